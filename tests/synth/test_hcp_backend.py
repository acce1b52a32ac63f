"""`state.backend = "hcp"`: the service stack keeps its state in an HCP Terraform workspace (cloud block), no
remote-state stack is synthesized, and nothing else changes; the default stays the S3 backend."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from constructs_lib.settings import DEFAULT_CONFIG, SettingsError, load_settings
from tests.support.synth import SERVICE_STACK, STATE_STACK, Synth, Synthesizer
from tools.terraform import terraform, terraform_env

HCP_CONFIG = Path(__file__).parents[1] / "fixtures" / "hcp.toml"

BAD_SETTINGS = [
    ("unknown_backend", '[state]\nbackend = "gcs"\n', ["state.backend: must be one of s3, hcp, got 'gcs'"]),
    (
        "hcp_without_workspace",
        '[state]\nbackend = "hcp"\n',
        [
            'state.hcp_organization: is required when state.backend = "hcp"',
            'state.hcp_workspace: is required when state.backend = "hcp"',
        ],
    ),
    # A forgotten `backend = "hcp"` would keep the state in S3 while the file names a workspace.
    (
        "workspace_under_s3",
        '[state]\nhcp_organization = "acme"\nhcp_workspace = "keys-prod"\n',
        [
            'state.hcp_organization: only applies with state.backend = "hcp" (the backend is "s3")',
            'state.hcp_workspace: only applies with state.backend = "hcp" (the backend is "s3")',
        ],
    ),
    (
        "bad_workspace_name",
        '[state]\nbackend = "hcp"\nhcp_organization = "acme"\nhcp_workspace = "keys prod"\n',
        [
            (
                "state.hcp_workspace: must be an HCP Terraform workspace name (1-90 letters, digits, '-' or '_'), "
                "got 'keys prod'"
            ),
        ],
    ),
    (
        "adopt_state_bucket_under_hcp",
        (
            '[state]\nbackend = "hcp"\nhcp_organization = "acme"\nhcp_workspace = "keys-prod"\n'
            '[adopt]\nstate_bucket = "kms-key-generator-tfstate"\n'
        ),
        ['adopt.state_bucket: is imported by the remote-state stack, which state.backend = "hcp" does not synthesize'],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS])
def test_bad_backend_settings_name_the_file_and_key(tmp_path: Path, text: str, expected: list[str]):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    lines = str(raised.value).splitlines()
    for line in expected:
        assert f"{config}: {line}" in lines


def test_default_backend_is_s3():
    state = load_settings(DEFAULT_CONFIG).state
    assert (state.backend, state.hcp_organization, state.hcp_workspace) == ("s3", "", "")


@pytest.fixture(scope="module")
def hcp(tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer) -> Synth:
    """config/default.toml with the `[state]` keys of tests/fixtures/hcp.toml added: compared with the session's
    default synth, only where the state lives may differ."""
    workdir = tmp_path_factory.mktemp("synth-hcp")
    default = DEFAULT_CONFIG.read_text()
    _, _, keys = HCP_CONFIG.read_text().partition("[state]\n")
    assert keys and default.count("\n[state]\n") == 1
    config = workdir / "hcp.toml"
    config.write_text(default.replace("\n[state]\n", f"\n[state]\n{keys}", 1))
    return synthesizer.synth(workdir / "out", config)


def test_service_stack_has_a_cloud_block_and_no_backend(hcp: Synth):
    terraform_block = hcp.service["terraform"]
    assert terraform_block["cloud"] == {
        "organization": "acme-platform",
        "workspaces": {"name": "kms-key-generator-prod"},
    }
    assert "backend" not in terraform_block


def test_no_remote_state_stack_is_synthesized(hcp: Synth):
    assert list(json.loads((hcp.outdir / "manifest.json").read_text())["stacks"]) == [SERVICE_STACK]
    assert not hcp.stack_dir(STATE_STACK).exists()


def test_only_where_state_lives_differs_from_the_default(hcp: Synth, service: dict):
    assert service["terraform"]["backend"]["s3"]["bucket"] == "kms-key-generator-tfstate"
    assert "cloud" not in service["terraform"]
    assert hcp.service["resource"] == service["resource"]
    assert hcp.service.get("import") == service.get("import")
    outputs, default_outputs = hcp.service["output"], service["output"]
    assert set(default_outputs) - set(outputs) == {"state_bucket", "state_lock_table"}
    assert set(outputs) - set(default_outputs) == {"state_workspace"}
    assert outputs["state_workspace"]["value"] == "acme-platform/kms-key-generator-prod"
    assert outputs["state_workspace"]["description"]


@pytest.mark.terraform
def test_hcp_service_stack_validates(hcp: Synth, tmp_path: Path):
    workdir = shutil.copytree(hcp.stack_dir(SERVICE_STACK), tmp_path / SERVICE_STACK)
    terraform("init", "-backend=false", "-input=false", "-no-color", cwd=workdir)
    result = terraform("validate", "-no-color", cwd=workdir)
    assert "Success! The configuration is valid." in result.stdout


@pytest.mark.terraform
def test_cloud_block_passes_terraform_init_checks(hcp: Synth, tmp_path: Path):
    """`validate` skips the cloud block (`init -backend=false` never reads it); `init` checks its arguments and
    workspace rules before contacting the host. Pointed at a closed local port, init may fail only there."""
    workdir = shutil.copytree(hcp.stack_dir(SERVICE_STACK), tmp_path / SERVICE_STACK)
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
        result = terraform(
            "init",
            "-input=false",
            "-no-color",
            cwd=workdir,
            check=False,
            env=terraform_env({"TF_CLOUD_HOSTNAME": host}),
        )
    errors = re.findall(r"Error: (.+)", result.stderr + result.stdout)
    assert errors and all(
        error.startswith(f'Failed to request discovery document: Get "https://{host}/') for error in errors
    ), result.stderr
