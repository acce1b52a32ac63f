"""`terraform validate` on every synthesized stack, offline, through the provider mirror.

A missing terraform binary or mirror raises `ToolError` and fails the test: it never skips.
"""

from __future__ import annotations

import shutil

import pytest

from tests.support.synth import SERVICE_STACK, STATE_STACK
from tools.terraform import terraform

pytestmark = pytest.mark.terraform


@pytest.mark.parametrize("stack", [STATE_STACK, SERVICE_STACK])
def test_stack_validates(synth, tmp_path, stack):
    workdir = shutil.copytree(synth.stack_dir(stack), tmp_path / stack)
    terraform("init", "-backend=false", "-input=false", "-no-color", cwd=workdir)
    result = terraform("validate", "-no-color", cwd=workdir)
    assert "Success! The configuration is valid." in result.stdout
