"""The Terraform wrapper fails loudly when terraform or the provider mirror is missing; `env` gives `npx cdktf` the
same offline setup."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tools import terraform as tf
from tools.paths import CDKTF_CLI


def test_mirror_from_environment_must_hold_the_aws_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(tf.MIRROR_ENV_VAR, str(tmp_path))
    with pytest.raises(
        tf.ToolError, match=rf"KMSKG_PROVIDER_MIRROR={tmp_path}: no registry.terraform.io/hashicorp/aws"
    ):
        tf.provider_mirror()


def test_mirror_from_environment_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    monkeypatch.setenv(tf.MIRROR_ENV_VAR, str(tmp_path))
    config = tf.write_cli_config(tmp_path / "terraform.rc").read_text()
    assert f'path    = "{tmp_path}"' in config
    assert "filesystem_mirror" in config


def test_no_mirror_anywhere_is_an_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(tf.MIRROR_ENV_VAR, raising=False)
    monkeypatch.setattr(tf, "_CANDIDATE_MIRRORS", ("/nonexistent/mirror",))
    with pytest.raises(tf.ToolError, match="no Terraform provider mirror .* set KMSKG_PROVIDER_MIRROR"):
        tf.provider_mirror()


def test_missing_terraform_is_an_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(tf.ToolError, match="terraform not found on PATH"):
        tf.terraform_binary()


def test_terraform_env_points_at_our_cli_config():
    env = tf.terraform_env()
    assert Path(env["TF_CLI_CONFIG_FILE"]).is_file()
    assert env["TF_INPUT"] == "0"


def test_env_gives_npx_cdktf_our_cli_config_and_no_provider_lock(capsys: pytest.CaptureFixture[str]):
    """`eval "$(python -m tools.terraform env)"`, then `npx cdktf diff|deploy|destroy` runs offline against AWS."""
    assert tf.main(["env"]) == 0
    exports = capsys.readouterr().out

    shell = subprocess.run(["sh", "-c", 'eval "$1" && env', "sh", exports], capture_output=True, text=True, check=True)

    env = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert env["TF_CLI_CONFIG_FILE"] == str(tf.CLI_CONFIG) and "filesystem_mirror" in tf.CLI_CONFIG.read_text()
    assert (env["CDKTF_SKIP_PROVIDER_LOCK"], env["CHECKPOINT_DISABLE"]) == ("true", "1")
    assert env["CDKTF_DISABLE_PLUGIN_CACHE_ENV"] == "true"
    assert "AWS_ENDPOINT_URL" not in exports and "CDKTF_OUTPUT" not in exports  # cdktf.out and AWS, as documented


def test_npx_cdktf_in_that_env_makes_no_plugin_cache_in_home(tmp_path: Path):
    """cdktf's default is `TF_PLUGIN_CACHE_DIR=~/.terraform.d/plugin-cache`, one link shared by all of a user's
    checkouts; it creates the folder on every start, `--version` included."""
    assert CDKTF_CLI.is_file(), f"{CDKTF_CLI} not found: run `make deps`"
    env = dict(os.environ, HOME=str(tmp_path)) | tf.cdktf_env()

    version = subprocess.run([CDKTF_CLI, "--version"], env=env, capture_output=True, text=True, timeout=120)

    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "0.21.0"
    assert not (tmp_path / ".terraform.d").exists()


def test_shell_exports_quote_values_and_unset_names():
    lines = tf.shell_exports({"A": "it's here", "B": "plain"}, unset=("C", "D")).splitlines()
    assert lines == ["export A='it'\"'\"'s here'", "export B=plain", "unset C D"]


def test_init_links_each_folder_straight_to_the_mirror(tmp_path: Path):
    """No shared plugin cache: a cache's link, replaced by every `init` of a folder without a lock file, broke a
    parallel apply linked through it ("Required plugins are not installed")."""
    provider = {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}}}
    links = []
    for name in "first", "second":
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.tf.json").write_text(json.dumps(provider))
        tf.terraform("init", "-input=false", "-no-color", cwd=tmp_path / name)
        [link] = (tmp_path / name / ".terraform" / "providers").glob("registry.terraform.io/hashicorp/aws/*/*")
        links.append(link)

    assert "plugin_cache_dir" not in tf.CLI_CONFIG.read_text()
    for link in links:
        assert link.is_symlink() and link.resolve().is_relative_to(tf.provider_mirror().resolve())
