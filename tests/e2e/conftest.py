"""End-to-end fixtures: synths with changed configuration or code, started early to overlap with deploys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from constructs_lib import api_contract
from tests.support.synth import PROJECT_ROOT, Synth, start_synth, synth_env

CHANGED_TEMPLATE_MARKER = "## changed by the e2e test"

# Runs the real app after changing the mapping template in code, as a developer would.
_CHANGED_TEMPLATE_APP = f"""
import runpy
import constructs_lib.api_contract as contract
contract.REQUEST_TEMPLATE = {CHANGED_TEMPLATE_MARKER!r} + "\\n" + contract.REQUEST_TEMPLATE
runpy.run_path("main.py", run_name="__main__")
"""


def _synth_changed_template(outdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHANGED_TEMPLATE_APP],
        cwd=PROJECT_ROOT,
        env=synth_env(outdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default synth alone: e2e modules need no other, so the worker running them (under xdist) makes one
    synth instead of the five the fast layers' `synths` fixture starts."""
    outdir = tmp_path_factory.mktemp("synth-default-e2e")
    process = start_synth(outdir, None)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f"synth failed:\n{stderr}"
    return Synth(outdir)


@pytest.fixture(scope="session")
def changed_template_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app synthesized with a different request mapping template (nothing else changed)."""
    outdir = tmp_path_factory.mktemp("synth-changed-template")
    process = _synth_changed_template(outdir)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()
    synth = Synth(outdir)
    template = next(iter(synth.service["resource"]["aws_api_gateway_integration"].values()))["request_templates"]
    assert template["application/json"].startswith(CHANGED_TEMPLATE_MARKER)
    assert api_contract.REQUEST_TEMPLATE in template["application/json"]
    return synth


@pytest.fixture(scope="session")
def retagged_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app synthesized with one more provider default tag: an in-place update of every resource."""
    outdir = tmp_path_factory.mktemp("synth-retagged")
    process = subprocess.run(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=synth_env(outdir, PROJECT_ROOT / "tests" / "fixtures" / "retagged.toml"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    return Synth(outdir)


@pytest.fixture(scope="session")
def tenant_synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """`three` (tests/fixtures/tenants.toml) and `two` (the same without the middle tenant), in parallel."""
    fixtures = PROJECT_ROOT / "tests" / "fixtures"
    runs = {"three": fixtures / "tenants.toml", "two": fixtures / "tenants-without-globex.toml"}
    outdirs = {name: tmp_path_factory.mktemp(f"synth-tenants-{name}") for name in runs}
    processes = {name: start_synth(outdirs[name], config) for name, config in runs.items()}
    for process in processes.values():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    return {name: Synth(outdirs[name]) for name in runs}
