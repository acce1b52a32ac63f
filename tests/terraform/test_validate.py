"""`terraform validate` on every synthesized stack, offline, through the provider mirror.

The default configuration, the variant (static key, tenants, token authorizer, VPC endpoints, features off)
and the hardened one (custom domain, every feature on) are validated. A missing terraform binary or mirror raises
`ToolError` and fails: it never skips.
"""

from __future__ import annotations

import shutil

import pytest

from tools.terraform import terraform

pytestmark = [pytest.mark.terraform, pytest.mark.seconds(31)]


@pytest.mark.parametrize("stack", ["remote-state", "service"])
@pytest.mark.parametrize("config", ["default", "variant", "hardened"])
def test_stack_validates(synths, tmp_path, config, stack):
    synth = synths[config]
    name = synth.service_name if stack == "service" else f"{synth.service_name}-remote-state"
    workdir = shutil.copytree(synth.stack_dir(name), tmp_path / name)
    terraform("init", "-backend=false", "-input=false", "-no-color", cwd=workdir)
    result = terraform("validate", "-no-color", cwd=workdir)
    assert "Success! The configuration is valid." in result.stdout
