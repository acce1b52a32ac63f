"""README's "Two commands" and "Try it locally", followed word for word on a fresh clone (issue #15).

The commands come from the README itself: the first `sh` block of each section, comments dropped. A README change
that alters the walkthrough fails `test_the_readme_documents_the_walkthrough`, and the commands run are the ones
parsed, never a copy kept here: `make synth` ("Two commands"; `make test` is not run: it is the whole suite, this
module included, and CI runs it itself), then `make deploy-local`, `make plan-local` (optional in the sequence) and
`make destroy-local` ("Try it locally"). Between deploy and destroy the `curl` line `make deploy-local` printed is
run as printed ("Calling the API locally") and must answer `HTTP 201`.

The clone: `git clone --no-hardlinks` of this repository, so it holds what is committed (HEAD), nothing of the
working tree; in CI the checkout is a clean clone, so that is what is tested. Each command runs in the clone's root
with an environment a new user would have: no AWS credentials, profile or endpoint, no `KMSKG_*` settings, no path
into this checkout, no make of ours above it; `LOCAL_AWS_PORT` is a free port, so the clone's emulator never meets
a developer's on 4566.

Dependencies are not installed afresh: a fresh `pip` + `npm ci` (2-3 minutes, network) is what CI's own `make synth`
on its clean checkout proves. To keep this test affordable the clone gets this checkout's installed `.venv/` and
`node_modules/` as hard-link copies (`cp -al`; a full copy where hard links cannot cross file systems), and fresh
stamp files (`.venv/.installed`, `node_modules/.installed`: new files, so this checkout's stamps keep their times),
newer than the clone's just-checked-out lock files; `make -q` must then find both up to date, so no make target
installs anything into the shared files. The venv's editable install of the project points at this checkout, but
`python -m tools.X` and `python main.py`, as make runs them from the clone's root, import the clone's sources first
(the editable finder comes after the working directory).

The clone's emulator is stopped and the clone removed whatever happens; the emulator's log is kept beside it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from local_aws.__main__ import LOG_NAME, RECORD_NAME, _alive, recorded, shutdown
from local_aws.private import free_port
from tests.support.synth import PROJECT_ROOT, SERVICE_STACK, STATE_STACK

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(142)]

README = "README.md"
DOCUMENTED_TWO_COMMANDS = ["make synth", "make test"]
NOT_RUN = {"make test": "the whole suite, this module included (CI runs it itself)"}
DOCUMENTED_TRY_IT_LOCALLY = ["make deploy-local", "make plan-local", "make destroy-local"]
OPTIONAL = {"make plan-local"}
# What the clone is given instead of installing it, and the stamp the Makefile keeps for each.
INSTALLED = {".venv": ".installed", "node_modules": ".installed"}
# A new user's environment has none of these: credentials, profile or endpoint of ours, settings, a port asked for,
# a cdktf output folder, a Terraform config of this checkout's, an interpreter path, or a make above it.
SCRUBBED_PREFIXES = ("AWS_", "CDKTF_", "LOCAL_AWS_")
SCRUBBED = {
    "KMSKG_CONFIG",
    "KMSKG_LOCAL",
    "KMSKG_API_KEY",
    "KMSKG_CHECKOV",
    "TF_CLI_CONFIG_FILE",
    "TF_DATA_DIR",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEFILES",
}
TIMEOUT = {"make synth": 300, "make deploy-local": 600, "make plan-local": 300, "make destroy-local": 300}


# --- the README: sections, their first shell block, its commands -----------------------------------------------------


def section(markdown: str, title: str) -> list[str]:
    """The lines of the section headed `title` (any level), up to the next heading; `#` lines in code are code."""
    lines, inside, fenced = [], False, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            if inside:
                break
            inside = line.lstrip("#").strip() == title
            continue
        if inside:
            lines.append(line)
    assert lines, f"{README} has no section {title!r}"
    return lines


def shell_blocks(lines: list[str]) -> list[list[str]]:
    """The fenced `sh` blocks among `lines`, each as its lines."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if current is None and line.strip() == "```sh":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def commands(block: list[str]) -> list[str]:
    """A block's commands as a shell reads them: comments (and comment-only lines) dropped."""
    return [shlex.join(words) for words in (shlex.split(line, comments=True) for line in block) if words]


def documented(title: str, root: Path = PROJECT_ROOT) -> list[str]:
    """The commands of the first ```sh block of `root`'s README section `title`."""
    blocks = shell_blocks(section((root / README).read_text(), title))
    assert blocks, f"{README}'s section {title!r} has no ```sh block"
    return commands(blocks[0])


def walkthrough(root: Path = PROJECT_ROOT) -> list[str]:
    """What a new user types, in the README's order: "Two commands" (but `make test`), then "Try it locally"."""
    two_commands = [command for command in documented("Two commands", root) if command not in NOT_RUN]
    return two_commands + documented("Try it locally", root)


def test_the_readme_documents_the_walkthrough():
    assert documented("Two commands") == DOCUMENTED_TWO_COMMANDS
    without_optional = [command for command in DOCUMENTED_TRY_IT_LOCALLY if command not in OPTIONAL]
    assert documented("Try it locally") in (DOCUMENTED_TRY_IT_LOCALLY, without_optional)
    assert walkthrough() in (["make synth", *DOCUMENTED_TRY_IT_LOCALLY], ["make synth", *without_optional])
    # "Calling the API locally" shows the line make deploy-local prints: a curl, the API key read when it runs.
    block = shell_blocks(section((PROJECT_ROOT / README).read_text(), "Calling the API locally"))[0]
    (curl,) = [line for line in block if line.startswith("curl ")]
    assert curl.startswith(documented_curl_prefix(4566)), curl


def documented_curl_prefix(port: int) -> str:
    return f"curl -sS -w '\\nHTTP %{{http_code}}\\n' -X POST http://127.0.0.1:{port}/restapis/"


# --- the fresh clone --------------------------------------------------------------------------------------------------


@dataclass
class Clone:
    root: Path
    port: int
    env: dict[str, str]
    outputs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.root / ".local-aws"

    @property
    def kept_log(self) -> Path:
        """Where the emulator's log is kept when the clone is removed: beside it."""
        return self.root.parent / LOG_NAME

    def run(self, command: str, timeout: float = 120, label: str = "") -> subprocess.CompletedProcess[str]:
        """`command` as a user types it, with bash, from the clone's root; its time kept under `label`."""
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        self.seconds[label or command] = round(time.monotonic() - started, 1)
        return result


def new_user_environment(port: int) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SCRUBBED and not name.startswith(SCRUBBED_PREFIXES)
    }
    root = str(PROJECT_ROOT)
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if entry and not (entry + "/").startswith(root + "/")
    )
    env["LOCAL_AWS_PORT"] = str(port)
    return env


def copy_installed(source: Path, target: Path) -> None:
    """Hard-link copy (`cp -al`), or a full copy where hard links cannot reach (another file system)."""
    linked = subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True, text=True)
    if linked.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    for folder, stamp in INSTALLED.items():
        assert (PROJECT_ROOT / folder / stamp).is_file(), f"{PROJECT_ROOT / folder} is not installed: run `make deps`"
    root = tmp_path_factory.mktemp("readme-walkthrough") / "kms-key-generator"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(root)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    port = free_port()
    checkout = Clone(root, port, new_user_environment(port))
    try:
        for folder, stamp in INSTALLED.items():
            copy_installed(PROJECT_ROOT / folder, root / folder)
            (root / folder / stamp).unlink()  # a new file, not the shared inode: this checkout's stamp keeps its time
            (root / folder / stamp).touch()
        targets = " ".join(f"{folder}/{stamp}" for folder, stamp in INSTALLED.items())
        up_to_date = checkout.run(f"make -q {targets}", label="make -q (dependencies up to date)")
        assert up_to_date.returncode == 0, f"make would install into the shared environments: {up_to_date}"
        imports = ".venv/bin/python -c 'import constructs_lib, local_aws, tools; print(tools.__file__)'"
        where = checkout.run(imports, label="imports from the clone")
        assert where.stdout.strip() == str(root / "tools" / "__init__.py"), where
        yield checkout
    finally:
        shutdown(checkout.state_dir)  # what a failed step left running: only the pid the clone recorded
        if (checkout.state_dir / LOG_NAME).is_file():  # the emulator's log outlives the clone, for a failure to cite
            shutil.copy2(checkout.state_dir / LOG_NAME, checkout.kept_log)
        shutil.rmtree(root, ignore_errors=True)


# --- what each command must have done ---------------------------------------------------------------------------------


def check_synth(clone: Clone, result: subprocess.CompletedProcess[str]) -> None:
    assert "deps: installing" not in result.stderr, result.stderr
    manifest = json.loads((clone.root / "cdktf.out" / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == sorted([SERVICE_STACK, STATE_STACK])
    for stack in manifest["stacks"]:
        assert (clone.root / "cdktf.out" / "stacks" / stack / "cdk.tf.json").is_file()


def check_deploy(clone: Clone, result: subprocess.CompletedProcess[str]) -> None:
    emulator = recorded(clone.state_dir)
    assert emulator is not None and emulator.port == clone.port, emulator
    out = result.stdout
    assert f"## emulator: local_aws on {clone.endpoint} (pid {emulator.pid}), started" in out, out
    assert f"\nDeployed to local_aws on {clone.endpoint} (pid {emulator.pid}):\n" in out, out
    for stack in STATE_STACK, SERVICE_STACK:
        assert f"## {stack}: applied: " in out, out

    # The printed curl, run as printed from the clone's root: the key is read by the clone's own tools.local.
    if shutil.which("curl", path=clone.env["PATH"]) is None:
        pytest.fail("curl is not on PATH: the command `make deploy-local` prints needs it; install curl")
    (curl,) = [line.strip() for line in out.splitlines() if line.startswith("  curl ")]
    assert curl.startswith(documented_curl_prefix(clone.port)), curl
    assert f"$({shlex.quote(str(clone.root / '.venv' / 'bin' / 'python'))} -m tools.local api-key " in curl, curl
    (alias,) = re.findall(r'"key_alias": "(demo-[0-9a-f]{8})"', curl)
    ran = clone.run(curl, label="the printed curl")
    assert (ran.returncode, ran.stderr) == (0, ""), ran
    body, _, status = ran.stdout.rstrip("\n").rpartition("\n")
    assert status == "HTTP 201", ran.stdout
    created = json.loads(body)
    assert created["AliasName"] == f"alias/{alias}" and created["KeyId"], created


def check_plan(clone: Clone, result: subprocess.CompletedProcess[str]) -> None:
    for stack in STATE_STACK, SERVICE_STACK:
        assert f"## {stack}: no changes" in result.stdout, result.stdout
    assert (clone.root / ".build" / "plan-result").read_text().strip() == "no-changes"


def check_destroy(clone: Clone, result: subprocess.CompletedProcess[str]) -> None:
    deployed = clone.outputs["make deploy-local"].stdout
    pid = int(re.search(rf"## emulator: local_aws on {re.escape(clone.endpoint)} \(pid (\d+)\)", deployed).group(1))
    out = result.stdout
    for stack in SERVICE_STACK, STATE_STACK:
        assert f"## {stack}: destroyed: " in out, out
    assert out.endswith(f"## emulator: local_aws on {clone.endpoint} (pid {pid}) stopped\n"), out
    assert not (clone.state_dir / RECORD_NAME).exists()
    assert not _alive(pid)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", clone.port)) != 0, f"port {clone.port} still answers"
    assert list(clone.state_dir.glob("terraform.*.tfstate")) == []


CHECKS: dict[str, Callable[[Clone, subprocess.CompletedProcess[str]], None]] = {
    "make synth": check_synth,
    "make deploy-local": check_deploy,
    "make plan-local": check_plan,
    "make destroy-local": check_destroy,
}


def test_the_walkthrough_works_on_a_fresh_clone(clone: Clone):
    steps = walkthrough(clone.root)  # the clone's README: what the commit documents is what it must do
    assert steps[0] == "make synth" and "make deploy-local" in steps and steps[-1] == "make destroy-local", steps
    assert set(steps) <= set(CHECKS), steps  # every documented step is checked (test_the_readme_... says which)
    for command in steps:
        result = clone.run(command, timeout=TIMEOUT[command])
        clone.outputs[command] = result
        assert result.returncode == 0, (
            f"`{command}` failed in {clone.root} (emulator log: {clone.kept_log}):\n{result.stdout}\n{result.stderr}"
        )
        CHECKS[command](clone, result)
    # Nothing the walkthrough wrote is left for `git status` to show: every output is ignored.
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone.root, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout
    print(f"\nREADME walkthrough in {clone.root} (LOCAL_AWS_PORT={clone.port}), seconds: {clone.seconds}")
