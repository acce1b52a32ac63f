"""Session fixtures: the app is synthesized once per session (five synths in parallel), never per test.

Under pytest-xdist (`make test TEST_WORKERS=2` runs `-n 2 --dist loadgroup`) the fast layers form one group, so
one worker pays for those synths, while each end-to-end module is a group of its own: its module-scoped deployment
(own emulator, own free port) is made once, on one worker, beside the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.synth import SERVICE_STACK, Synth, start_synth

VARIANT_CONFIG = Path(__file__).parent / "fixtures" / "variant.toml"
ADOPT_SECTION = Path(__file__).parent / "fixtures" / "adopt.toml"
HARDENED_CONFIG = Path(__file__).parent / "fixtures" / "hardened.toml"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = item.path.stem if item.get_closest_marker("e2e") else "fast"
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """`default` and `default_again` (same commit, for determinism), `variant` (tests/fixtures/variant.toml),
    `adopt` (variant plus the `[adopt]` section of tests/fixtures/adopt.toml) and `hardened` (every production
    feature on, tests/fixtures/hardened.toml)."""
    adopt_config = tmp_path_factory.mktemp("adopt-config") / "adopt.toml"
    adopt_config.write_text(VARIANT_CONFIG.read_text() + "\n" + ADOPT_SECTION.read_text())
    runs = {
        "default": (tmp_path_factory.mktemp("synth-default"), None, SERVICE_STACK),
        "default_again": (tmp_path_factory.mktemp("synth-default-again"), None, SERVICE_STACK),
        "variant": (tmp_path_factory.mktemp("synth-variant"), VARIANT_CONFIG, "keys-variant"),
        "adopt": (tmp_path_factory.mktemp("synth-adopt"), adopt_config, "keys-variant"),
        "hardened": (tmp_path_factory.mktemp("synth-hardened"), HARDENED_CONFIG, "keys-hardened"),
    }
    processes = {name: start_synth(outdir, config) for name, (outdir, config, _) in runs.items()}
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"synth {name} failed:\n{stderr}"
    return {name: Synth(outdir, service) for name, (outdir, _, service) in runs.items()}


@pytest.fixture(scope="session")
def synth(synths: dict[str, Synth]) -> Synth:
    return synths["default"]


@pytest.fixture(scope="session")
def service(synth: Synth) -> dict:
    return synth.service


@pytest.fixture(scope="session")
def state(synth: Synth) -> dict:
    return synth.state


@pytest.fixture(scope="session")
def variant(synths: dict[str, Synth]) -> Synth:
    return synths["variant"]


@pytest.fixture(scope="session")
def hardened(synths: dict[str, Synth]) -> Synth:
    return synths["hardened"]
