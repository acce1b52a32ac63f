"""Run the real app out of the test process: `main.synthesize` in one long-lived synth worker per session, or
`python main.py` itself, the way `cdktf synth` does, where a separate process is the point.

The worker pays the ~10 s jsii start-up once; each configuration after the first takes about a second, and its
output is byte-identical to `python main.py`'s: tests/synth/test_stacks.py compares the worker's default synth with
a `python main.py` of its own (test_two_synths_of_one_commit_are_byte_identical).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs_lib.naming import Names
from tools.paths import PROJECT_ROOT
from tools.synth_output import STACK_FILE, STACKS, read_stack

SERVICE_STACK = "kms-key-generator"
STATE_STACK = Names(service=SERVICE_STACK, stage="").remote_state_stack


def synth_env(outdir: Path, config: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, CDKTF_OUTDIR=str(outdir))
    env.pop("KMSKG_CONFIG", None)
    if config is not None:
        env["KMSKG_CONFIG"] = str(config)
    return env


def start_synth(outdir: Path, config: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=synth_env(outdir, config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Synth:
    """One synth output folder, with helpers to read its stacks."""

    outdir: Path
    service_name: str = SERVICE_STACK

    def stack_dir(self, stack: str) -> Path:
        return self.outdir / STACKS / stack

    def stack(self, stack: str) -> dict[str, Any]:
        return read_stack(self.stack_dir(stack) / STACK_FILE)

    @property
    def service(self) -> dict[str, Any]:
        return self.stack(self.service_name)

    @property
    def state(self) -> dict[str, Any]:
        return self.stack(Names(service=self.service_name, stage="").remote_state_stack)


class SynthWorker:
    """Client of one `python -m tests.support.synth_worker`, started on the first request; safe across threads.

    What the app writes to stderr (jsii's warnings, a failing synth's traceback) goes to `log`."""

    def __init__(self, log: Path) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        env = {name: value for name, value in os.environ.items() if name not in ("CDKTF_OUTDIR", "KMSKG_CONFIG")}
        with open(self._log, "a") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.support.synth_worker"],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def synth(self, outdir: Path, config: Path | None = None, service: str = SERVICE_STACK) -> Synth:
        """Synthesize `config` (None: config/default.toml) into `outdir`; fail the caller with the app's error."""
        outdir.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._process is None:
                self._process = self._start()
            stdin, stdout = self._process.stdin, self._process.stdout
            assert stdin is not None and stdout is not None
            stdin.write(json.dumps({"outdir": str(outdir), "config": str(config) if config else None}) + "\n")
            stdin.flush()
            reply = stdout.readline()
        if not reply:
            raise AssertionError(f"the synth worker stopped; its log: {self._log}")
        error = json.loads(reply)["error"]
        assert error is None, f"synth of {config or 'config/default.toml'} failed:\n{error}"
        return Synth(outdir, service)

    def close(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()
            self._process.wait(timeout=60)


def resources(stack: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    """All resources of one Terraform type, by logical name."""
    return stack.get("resource", {}).get(rtype, {})


def _single(stack: dict[str, Any], rtype: str, prefix: str) -> tuple[str, dict[str, Any]]:
    found = {name: r for name, r in resources(stack, rtype).items() if name.startswith(prefix)}
    assert len(found) == 1, f"expected exactly one {rtype} named {prefix}*, found {sorted(found)}"
    return next(iter(found.items()))


def only(stack: dict[str, Any], rtype: str, prefix: str = "") -> dict[str, Any]:
    """The single resource of a type whose logical name starts with `prefix` (construct path), loudly."""
    return _single(stack, rtype, prefix)[1]


def ref(stack: dict[str, Any], rtype: str, attribute: str, prefix: str = "") -> str:
    """The `${type.name.attr}` reference to the single resource `only(stack, rtype, prefix)` finds."""
    name = _single(stack, rtype, prefix)[0]
    return "${" + f"{rtype}.{name}.{attribute}" + "}"
