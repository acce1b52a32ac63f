"""Session fixtures: every configuration is synthesized at most once per session (per xdist worker), in the test
process, never per test.

`make test` runs pytest-xdist workers with `--dist loadfile`: a module's fixtures (an end-to-end module's emulator
and deployment) are made once, on one worker.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from main import PINNED_NODE
from tests.support import botocore_data, scheduling
from tests.support.synth import SERVICE_STACK, Synth, Synthesizer, start_synth

VARIANT_CONFIG = Path(__file__).parent / "fixtures" / "variant.toml"
ADOPT_SECTION = Path(__file__).parent / "fixtures" / "adopt.toml"
HARDENED_CONFIG = Path(__file__).parent / "fixtures" / "hardened.toml"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (`pytest.mark.seconds`): under `--dist loadfile` the short ones fill in at the end."""
    scheduling.longest_first(items)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> scheduling.IdleFirst | None:
    """`--dist loadfile` hands a worker its next file only when it is idle (`scheduling.IdleFirst`)."""
    return scheduling.IdleFirst(config, log) if config.getoption("dist") == "loadfile" else None


def pytest_configure(config: pytest.Config) -> None:
    """Terraform and its provider (Go) collect garbage less often: measured ~25% less CPU per command for ~6% more
    memory; subprocesses inherit it. jsii runs on the pinned Node 22 however pytest is started: collecting starts
    it in this process (test modules import the provider bindings), before `main.synthesize` could choose. botocore
    parses its data files once per process (`botocore_data.share_loader`)."""
    botocore_data.share_loader()
    os.environ.setdefault("GOGC", "400")
    if PINNED_NODE.exists():
        os.environ.setdefault("JSII_NODE", str(PINNED_NODE))


class Synths(dict[str, Synth]):
    """The session's synths by name, each made on first use (a worker that needs only `hardened` makes no other):
    `default`, `variant` (tests/fixtures/variant.toml), `adopt` (variant plus the `[adopt]` section of
    tests/fixtures/adopt.toml), `hardened` (every production feature on, tests/fixtures/hardened.toml), all by
    the session's `Synthesizer`, and `default_again`, a `python main.py` of its own: a second process, for
    determinism, made once per run in `shared` (see `_once_per_run`). Made in the test process on first use: a test
    that changes a `constructs_lib` global must not be the first to ask for a synth (monkeypatch is undone only after
    the synth is cached)."""

    SERVICES = {
        "default": SERVICE_STACK,
        "variant": "keys-variant",
        "adopt": "keys-variant",
        "hardened": "keys-hardened",
    }

    def __init__(self, synthesizer: Synthesizer, folder: Path, shared: Path) -> None:
        super().__init__()
        self._synthesizer, self._folder, self._shared = synthesizer, folder, shared

    def __missing__(self, name: str) -> Synth:
        if name == "default_again":
            synth = self._once_per_run(name)
        else:
            synth = self._synthesizer.synth(self._folder / name, self._config(name), self.SERVICES[name])
        self[name] = synth
        return synth

    def _once_per_run(self, name: str) -> Synth:
        """`python main.py` into the folder every xdist worker of this run sees, by the first worker that asks: a
        process of its own costs ~15 s of CPU (its jsii starts from nothing), and three modules, on any worker, use
        it. Others wait on the lock, then read the finished folder (moved into place only once complete)."""
        outdir = self._shared / name
        with (self._shared / f"{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not outdir.is_dir():
                partial = self._shared / f"{name}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                process = start_synth(partial)
                _, stderr = process.communicate(timeout=300)
                assert process.returncode == 0, f"synth {name} failed:\n{stderr}"
                partial.rename(outdir)
        return Synth(outdir)

    def _config(self, name: str) -> Path | None:
        if name == "adopt":
            config = self._folder / "adopt.toml"
            config.write_text(VARIANT_CONFIG.read_text() + "\n" + ADOPT_SECTION.read_text())
            return config
        return {"variant": VARIANT_CONFIG, "hardened": HARDENED_CONFIG}.get(name)


@pytest.fixture(scope="session")
def synthesizer() -> Synthesizer:
    return Synthesizer()


@pytest.fixture(scope="session")
def synths(synthesizer: Synthesizer, tmp_path_factory: pytest.TempPathFactory) -> Synths:
    """This worker's synths; `default_again` in the run's base folder, above every worker's own (xdist)."""
    basetemp = tmp_path_factory.getbasetemp()
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    return Synths(synthesizer, tmp_path_factory.mktemp("synths"), shared)


@pytest.fixture(scope="session")
def synth(synths: Synths) -> Synth:
    return synths["default"]


@pytest.fixture(scope="session")
def service(synth: Synth) -> dict:
    return synth.service


@pytest.fixture(scope="session")
def state(synth: Synth) -> dict:
    return synth.state


@pytest.fixture(scope="session")
def variant(synths: Synths) -> Synth:
    return synths["variant"]


@pytest.fixture(scope="session")
def hardened(synths: Synths) -> Synth:
    return synths["hardened"]
