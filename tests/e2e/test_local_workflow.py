"""`npx cdktf` and the make targets on one emulator and one state, as README's "Try it locally" shows them.

`eval "$(python -m tools.local env)"`, then `npx cdktf deploy` both stacks; the make path's plan (`python -m
tools.local plan`) sees no changes; after `npx cdktf diff` (which leaves `.terraform` and `plan` in the synth folder)
the make path's deploy still copies it and changes nothing; `destroy` acts on the recorded emulator and stops it.

Run as a developer runs them, from the project root, but with a working folder of its own (`--workdir`, where the
emulator is recorded and cdktf's output goes) and an emulator that `env` starts on a free port: never 4566, never the
checkout's `.local-aws/`. Tests run in file order on one deployment; the emulator is stopped whatever happens.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from local_aws.__main__ import _alive, recorded, shutdown
from local_aws.private import free_port
from main import PINNED_NODE
from tests.e2e.conftest import NO_WAF_FILE, no_waf_config
from tests.support.synth import PROJECT_ROOT, SERVICE_STACK, STATE_STACK
from tools.paths import CDKTF_CLI

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(138)]

NO_CHANGES = "0 added, 0 changed, 0 destroyed"


def environment(workdir: Path) -> dict[str, str]:
    """The caller's environment as `make` would pass it, no port asked for, with settings chosen as README shows
    (`KMSKG_CONFIG`): the default ones without the WAF (`no_waf_config`, written by the `workdir` fixture), since
    the WAF is not what this module is about, and its web ACL's cost (`no_waf_config`) would come in each of the
    six plans, applies and destroys of the service here."""
    env = {name: value for name, value in os.environ.items() if name != "LOCAL_AWS_PORT"}
    env["KMSKG_CONFIG"] = str(workdir / NO_WAF_FILE)
    if PINNED_NODE.is_file():  # first on make's PATH where it is installed
        env["PATH"] = f"{PINNED_NODE.parent}{os.pathsep}{env['PATH']}"
    return env


def local(workdir: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m tools.local <command>` on what cdktf synthesized into the working folder."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.local",
            command,
            "--workdir",
            str(workdir),
            "--synth-dir",
            str(workdir / "cdktf.out"),
            *args,
        ],
        cwd=PROJECT_ROOT,
        env=environment(workdir),
        capture_output=True,
        text=True,
        timeout=900,
    )


def cdktf(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`npx cdktf <args>` in the environment `env` prints, evaluated by the shell as README shows."""
    env_command = shlex.join([sys.executable, "-m", "tools.local", "env", "--workdir", str(workdir)])
    return subprocess.run(
        ["sh", "-c", f'eval "$({env_command})" && exec {shlex.quote(str(CDKTF_CLI))} "$@"', "sh", *args],
        cwd=PROJECT_ROOT,
        env=environment(workdir),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    assert CDKTF_CLI.is_file(), f"{CDKTF_CLI} not found: run `make deps`"
    workdir = tmp_path_factory.mktemp("local-workflow")
    no_waf_config(workdir)
    try:
        started = local(workdir, "env", "--port", str(free_port()))
        assert started.returncode == 0, started.stderr
        assert "started" in started.stderr
        yield workdir
    finally:
        shutdown(workdir)  # what a failed test left running: only the pid recorded there


def test_npx_cdktf_deploys_both_stacks_with_the_state_where_make_keeps_it(workdir):
    real_state = PROJECT_ROOT / f"terraform.{STATE_STACK}.tfstate"  # a real deployment's: never touched
    before = real_state.stat().st_mtime_ns if real_state.exists() else None

    state = cdktf(workdir, "deploy", "--auto-approve", STATE_STACK)  # synthesizes into the working folder
    assert state.returncode == 0, state.stdout + state.stderr
    service = cdktf(workdir, "deploy", "--skip-synth", "--auto-approve", SERVICE_STACK)
    assert service.returncode == 0, service.stdout + service.stderr

    assert "Apply complete!" in state.stdout and "Apply complete!" in service.stdout
    assert (workdir / f"terraform.{STATE_STACK}.tfstate").is_file()
    assert (real_state.stat().st_mtime_ns if real_state.exists() else None) == before


def test_the_make_path_plans_no_changes(workdir):
    emulator = recorded(workdir)

    plan = local(workdir, "plan")

    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"## emulator: local_aws on {emulator.endpoint} (pid {emulator.pid}), this checkout's" in plan.stdout
    assert f"## {STATE_STACK}: no changes" in plan.stdout and f"## {SERVICE_STACK}: no changes" in plan.stdout


def test_after_npx_cdktf_diff_the_make_path_deploys_nothing_new(workdir):
    diff = cdktf(workdir, "diff", "--skip-synth", SERVICE_STACK)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "No changes." in diff.stdout
    left = workdir / "cdktf.out" / "stacks" / SERVICE_STACK
    assert (left / ".terraform").is_dir() and (left / "plan").is_file()  # what made the copy crash

    deploy = local(workdir, "deploy")

    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    emulator = recorded(workdir)
    for stack in STATE_STACK, SERVICE_STACK:
        assert f"## {stack}: init: up to date\n## {stack}: apply\n## {stack}: applied: {NO_CHANGES}\n" in deploy.stdout
    summary = deploy.stdout[deploy.stdout.index("\nDeployed to local_aws") :]
    assert summary.splitlines()[1:4] == [
        f"Deployed to local_aws on {emulator.endpoint} (pid {emulator.pid}):",
        f"  {STATE_STACK}: {NO_CHANGES}",
        f"  {SERVICE_STACK}: {NO_CHANGES}",
    ]
    assert not (workdir / "stacks" / SERVICE_STACK / "plan").exists()


def test_destroy_acts_on_the_recorded_emulator_and_stops_it(workdir):
    emulator = recorded(workdir)

    destroy = local(workdir, "destroy")

    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert "nothing deployed" not in destroy.stdout
    assert f"## {SERVICE_STACK}: destroyed: " in destroy.stdout and f"## {STATE_STACK}: destroyed: " in destroy.stdout
    assert destroy.stdout.endswith(f"## emulator: local_aws on {emulator.endpoint} (pid {emulator.pid}) stopped\n")
    assert recorded(workdir) is None and not _alive(emulator.pid)
    assert list(workdir.glob("terraform.*.tfstate")) == []
