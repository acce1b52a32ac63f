"""`tools.synth_inputs`: targets that read `cdktf.out/` synthesize again exactly when the synth's inputs changed.

Runs in a scratch project with a stand-in synth command (it writes a manifest and one stack), so no test pays for a
real synth; `KMSKG_CONFIG` names the scratch settings file, as `KMSKG_CONFIG=... make plan-local` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from constructs_lib.settings import CONFIG_ENV_VAR, DEFAULT_CONFIG
from tools import synth_inputs
from tools.synth_inputs import Inputs

# Stands in for `npx cdktf synth`: writes what a synth writes, with the settings file's content in the stack.
FAKE_SYNTH = [
    sys.executable,
    "-c",
    "import os, pathlib; stack = pathlib.Path('cdktf.out/stacks/service'); stack.mkdir(parents=True, exist_ok=True); "
    "pathlib.Path('cdktf.out/manifest.json').write_text('{}'); "
    "(stack / 'cdk.tf.json').write_text(pathlib.Path(os.environ['KMSKG_CONFIG']).read_text())",
]
FAILING_SYNTH = [sys.executable, "-c", "raise SystemExit(1)"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one file per kind of input, synthesized once with `config/dev.toml`."""
    for name in (
        "main.py",
        "cdktf.json",
        "constructs_lib/stack.py",
        "lambda/handler/handler.py",
        "pyproject.toml",
        "constraints.txt",
        "package-lock.json",
        "config/dev.toml",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "config" / "dev.toml"))
    assert synth_inputs.main(["synth", "--", *FAKE_SYNTH], root=tmp_path) == 0
    return tmp_path


def changes(root: Path) -> list[str]:
    return Inputs.read(root).changes_since(root)


def test_an_unchanged_project_is_up_to_date_and_not_synthesized_again(project, capsys):
    capsys.readouterr()

    assert changes(project) == []
    assert synth_inputs.main(["ensure", "--", *FAILING_SYNTH], root=project) == 0  # the synth did not run
    shown = f"config/dev.toml ({CONFIG_ENV_VAR}={project}/config/dev.toml)"
    assert capsys.readouterr().out == f"cdktf.out is up to date for {shown}\n"


def test_changed_settings_content_synthesizes_again(project, capsys):
    (project / "config" / "dev.toml").write_text('[service]\nname = "other"\n')
    capsys.readouterr()

    assert changes(project) == ["config/dev.toml changed"]
    assert synth_inputs.main(["ensure", "--", *FAKE_SYNTH], root=project) == 0
    assert capsys.readouterr().out.startswith("synth: config/dev.toml (KMSKG_CONFIG=")
    assert "other" in (project / "cdktf.out" / "stacks" / "service" / "cdk.tf.json").read_text()
    assert changes(project) == []


def test_another_settings_file_with_the_same_content_synthesizes_again(project, monkeypatch):
    (project / "config" / "prod.toml").write_text((project / "config" / "dev.toml").read_text())
    monkeypatch.setenv(CONFIG_ENV_VAR, str(project / "config" / "prod.toml"))

    assert changes(project) == ["the settings file is now config/prod.toml (was config/dev.toml)"]


def test_naming_the_default_settings_file_is_the_same_input_as_leaving_kmskg_config_unset(project, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV_VAR, str(DEFAULT_CONFIG))
    Inputs.read(project).record(project)
    monkeypatch.delenv(CONFIG_ENV_VAR)

    assert changes(project) == []


@pytest.mark.parametrize("name", ["constructs_lib/stack.py", "lambda/handler/handler.py", "package-lock.json"])
def test_a_changed_source_or_lock_file_synthesizes_again(project, name):
    (project / name).write_text("changed\n")

    assert changes(project) == [f"{name} changed"]


def test_a_new_source_file_synthesizes_again(project):
    (project / "constructs_lib" / "new.py").write_text("")
    (project / "constructs_lib" / "__pycache__").mkdir()
    (project / "constructs_lib" / "__pycache__" / "stack.cpython-311.pyc").write_bytes(b"ignored")

    assert changes(project) == ["constructs_lib/new.py changed"]


def test_an_output_rewritten_by_another_command_synthesizes_again(project):
    (project / "cdktf.out" / "stacks" / "service" / "cdk.tf.json").write_text("{}")

    assert changes(project) == ["cdktf.out/ was written by another command since `make synth`"]


def test_a_failed_synth_leaves_the_output_stale(project):
    (project / "main.py").write_text("broken\n")

    assert synth_inputs.main(["ensure", "--", *FAILING_SYNTH], root=project) == 1
    (project / "main.py").write_text("# main.py\n")  # back as it was stamped: only the lost stamp says stale
    assert changes(project) == ["no record of the last `make synth` (cdktf.out/.inputs.json)"]


def test_a_missing_settings_file_stops_the_target_naming_the_file(project, monkeypatch, capsys):
    monkeypatch.setenv(CONFIG_ENV_VAR, "config/prdo.toml")
    capsys.readouterr()

    for mode in ("synth", "ensure"):
        assert synth_inputs.main([mode, "--", *FAKE_SYNTH], root=project) == 2
        assert capsys.readouterr().err == (
            f"config/prdo.toml: settings file not found (set {CONFIG_ENV_VAR} to a TOML file)\n"
        )
    assert json.loads((project / "cdktf.out" / ".inputs.json").read_text())["inputs"]["config"].endswith("dev.toml")
