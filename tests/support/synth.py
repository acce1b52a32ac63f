"""Run the real app: `main.synthesize` in the test process (`Synthesizer`), or `python main.py` itself, the way
`cdktf synth` does, where a separate process is the point.

Each configuration takes about a second in a process where jsii has started, and its output is byte-identical to
`python main.py`'s: tests/synth/test_stacks.py compares the session's default synth with a `python main.py` of its
own (test_two_synths_of_one_commit_are_byte_identical).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs_lib.naming import Names
from constructs_lib.settings import DEFAULT_CONFIG, SettingsError, load_settings
from main import synthesize
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


class Synthesizer:
    """`main.synthesize` in the test process itself, one configuration at a time.

    Under `make test` collecting has started jsii in each worker already (tests/synth modules import the provider
    bindings), so a configuration costs about a second, where a process of its own would first spend ~15 s of CPU
    starting jsii again. The lock keeps two of this session's synths apart (threads of an end-to-end module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def synth(self, outdir: Path, config: Path | None = None, service: str = SERVICE_STACK) -> Synth:
        """Synthesize `config` (None: config/default.toml, regardless of `$KMSKG_CONFIG`) into `outdir`."""
        try:
            settings = load_settings(config or DEFAULT_CONFIG)
        except SettingsError as error:
            raise AssertionError(f"synth of {config or DEFAULT_CONFIG} failed:\n{error}") from None
        outdir.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            synthesize(settings, str(outdir))
        return Synth(outdir, service)


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
