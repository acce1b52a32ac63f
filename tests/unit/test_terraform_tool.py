"""The Terraform wrapper fails loudly when terraform or the provider mirror is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import terraform as tf


def test_mirror_from_environment_must_hold_the_aws_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(tf.MIRROR_ENV_VAR, str(tmp_path))
    with pytest.raises(tf.ToolError, match=rf"KMSKG_PROVIDER_MIRROR={tmp_path}: no registry.terraform.io/hashicorp/aws"):
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
