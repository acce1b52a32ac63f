"""`make lint`'s mypy skips the provider package's `__init__` (pyproject.toml): the provider classes stay typed.

The probe is checked with the project's own mypy configuration, in a scratch folder with a cold cache, as CI meets it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.synth import PROJECT_ROOT

PROBE = """
from cdktf import TerraformStack
from cdktf_cdktf_provider_aws.wafv2_web_acl import Wafv2WebAcl


def web_acl(stack: TerraformStack) -> int:
    acl = Wafv2WebAcl(stack, "acl", name="n", scope="REGIONAL", default_action={}, visibility_config={}, bogus=1)
    return acl.name
"""


def test_mypy_still_types_the_provider_classes_constructs_lib_imports(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(PROJECT_ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "probe.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result
    assert 'probe.py:7: error: Unexpected keyword argument "bogus" for "Wafv2WebAcl"  [call-arg]' in result.stdout
    assert 'probe.py:8: error: Incompatible return value type (got "str", expected "int")' in result.stdout
    assert "Found 2 errors in 1 file (checked 1 source file)" in result.stdout, result.stdout
