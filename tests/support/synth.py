"""Run the real app (`python main.py`) in subprocesses, the way `cdktf synth` does.

Subprocesses keep the ~10 s jsii start-up out of the test process and let several synths (default
twice, for determinism, and a variant config) run side by side on the machine's cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_synth(outdir: Path, config: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    process = start_synth(outdir, config)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


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
