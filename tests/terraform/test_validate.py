"""`terraform validate` on every synthesized stack, offline, through the provider mirror.

Both the default configuration and the variant (static key, tenants, token authorizer, VPC endpoints)
are validated. A missing terraform binary or mirror raises `ToolError` and fails: it never skips.
"""

from __future__ import annotations

import shutil

import pytest

from tools.terraform import terraform

pytestmark = pytest.mark.terraform


@pytest.mark.parametrize("stack", ["remote-state", "service"])
@pytest.mark.parametrize("config", ["default", "variant"])
def test_stack_validates(synths, tmp_path, config, stack):
    synth = synths[config]
    name = synth.service_name if stack == "service" else f"{synth.service_name}-remote-state"
    workdir = shutil.copytree(synth.stack_dir(name), tmp_path / name)
    terraform("init", "-backend=false", "-input=false", "-no-color", cwd=workdir)
    result = terraform("validate", "-no-color", cwd=workdir)
    assert "Success! The configuration is valid." in result.stdout
