"""Adopting the original modules' deployment: `[adopt]` emits import blocks, and only then.

The `adopt` synth is the `variant` configuration plus the `[adopt]` section of tests/fixtures/adopt.toml, so
everything it adds over `variant` is adoption. The deployed behaviour (imports, nothing destroyed, no drift
afterwards) is proven on the emulator by tests/e2e/test_adoption.py.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from constructs_lib.settings import SettingsError, load_settings
from tests.conftest import ADOPT_SECTION
from tests.support.synth import PROJECT_ROOT, synth_env
from tools.addresses import addresses

ADOPT = tomllib.loads(ADOPT_SECTION.read_text())["adopt"]
API, RESOURCE = ADOPT["rest_api_id"], ADOPT["resource_id"]


def imports_by_path(stack: dict) -> dict[str, str]:
    """`{construct path below the stack: import id}` of a stack's import blocks."""
    paths = {
        f"{rtype}.{name}": body["//"]["metadata"]["path"].split("/", 1)[1]
        for rtype, named in stack.get("resource", {}).items()
        for name, body in named.items()
    }
    return {paths[block["to"]]: block["id"] for block in stack.get("import", [])}


def test_default_and_variant_synths_import_nothing(synth, variant):
    for stack in (synth.service, synth.state, variant.service, variant.state):
        assert "import" not in stack


def test_service_stack_imports_each_adopted_resource_with_its_id(synths):
    assert imports_by_path(synths["adopt"].service) == {
        "api/rest-api": API,
        "api/keys-resource": f"{API}/{RESOURCE}",
        "api/post-method": f"{API}/{RESOURCE}/POST",
        # The stage name is taken under the adopted API, so the stage (variant's "live") is adopted with it.
        "api/stage": f"{API}/live",
        "usage-plan-general/usage-plan": ADOPT["usage_plan_id"],
        "service-api-key/api-key": ADOPT["api_key_id"],
        "key-generator/logs/log-group": "/aws/lambda/keys-variant",
        "key-generator/function": "keys-variant",
        "key-generator/execution-role": "keys-variant-lambda-execution",
        "api-key-parameter/parameter": "/APIGateway/APIKeys/keys-variant",
    }


def test_integration_is_overwritten_not_imported(synths):
    # Importing it would plan a replacement (passthrough_behavior is ForceNew); PutIntegration overwrites.
    assert "api/lambda-integration" not in imports_by_path(synths["adopt"].service)


def test_remote_state_stack_imports_the_state_bucket_and_lock_table(synths):
    assert imports_by_path(synths["adopt"].state) == {
        "remote-backend/bucket": "keys-variant-state",
        "remote-backend/lock-table": "keys-variant-lock",
    }


def test_import_blocks_use_the_default_provider(synths):
    for stack in (synths["adopt"].service, synths["adopt"].state):
        assert all(set(block) == {"to", "id"} for block in stack["import"])


def test_adoption_changes_no_address_and_no_argument(synths):
    adopted, plain = synths["adopt"], synths["variant"]
    assert addresses(adopted.outdir) == addresses(plain.outdir)
    for name in ("service", "state"):
        # Besides the import blocks, only cdktf's own metadata (`//`, which lists them again) differs.
        without_imports = {key: value for key, value in getattr(adopted, name).items() if key not in ("import", "//")}
        assert without_imports == {key: value for key, value in getattr(plain, name).items() if key != "//"}


# --- settings --------------------------------------------------------------------------------------------

STATIC = "[rotation]\nenabled = false\n"
BAD_ADOPTIONS = [
    (
        "api_key_with_rotation_on",
        "[adopt]\napi_key_id = 'k1l2m3n4o5'\n",
        "adopt.api_key_id: adopting an API key needs rotation.enabled = false (the static-key mode the original ran)",
    ),
    (
        "api_without_resource",
        STATIC + "[adopt]\nrest_api_id = 'a1b2c3d4e5'\n",
        "adopt.rest_api_id: needs a valid adopt.resource_id too (the id of its /keys resource)",
    ),
    (
        "resource_without_api",
        STATIC + "[adopt]\nresource_id = 'f6g7h8'\n",
        "adopt.resource_id: needs a valid adopt.rest_api_id too: the resource is imported as "
        "<rest_api_id>/<resource_id>",
    ),
    (
        "usage_plan_id_given_as_name",
        "[adopt]\nusage_plan_id = 'kms-key-generator-usage-plan'\n",
        "adopt.usage_plan_id: must be an API Gateway id such as a1b2c3d4e5",
    ),
    (
        "log_groups_not_a_list",
        "[adopt]\nlog_group_names = '/aws/lambda/kms-key-generator'\n",
        "adopt.log_group_names: must be a list of a string, got str '/aws/lambda/kms-key-generator'",
    ),
    (
        "foreign_log_group",
        "[adopt]\nlog_group_names = ['/aws/lambda/other']\n",
        "adopt.log_group_names: item 0 ('/aws/lambda/other') is not a log group this stack manages "
        "(/aws/lambda/kms-key-generator, /aws/lambda/kms-key-generator-api-key-rotation)",
    ),
    (
        "rotation_log_group_in_static_mode",
        STATIC + "[adopt]\nlog_group_names = ['/aws/lambda/kms-key-generator-api-key-rotation']\n",
        "is not a log group this stack manages (/aws/lambda/kms-key-generator)",
    ),
    (
        "log_group_twice",
        "[adopt]\nlog_group_names = ['/aws/lambda/kms-key-generator', '/aws/lambda/kms-key-generator']\n",
        "adopt.log_group_names: item 1 ('/aws/lambda/kms-key-generator') is listed twice",
    ),
    (
        "parameter_of_another_service",
        "[adopt]\nssm_parameter_name = '/APIGateway/APIKeys/other'\n",
        "adopt.ssm_parameter_name: is '/APIGateway/APIKeys/other', but this stack names it "
        "'/APIGateway/APIKeys/kms-key-generator' (from service.name): adopted under another name it would be "
        "replaced, not kept",
    ),
    (
        "parameter_without_slash",
        "[adopt]\nssm_parameter_name = 'APIGateway/APIKeys/kms-key-generator'\n",
        "adopt.ssm_parameter_name: must be an SSM parameter name starting with '/'",
    ),
    (
        "function_arn",
        "[adopt]\nlambda_function_name = 'arn:aws:lambda:us-east-1:123456789012:function:kms-key-generator'\n",
        "adopt.lambda_function_name: must be a Lambda function name (1-64 of letters, digits, - and _), not an ARN",
    ),
    (
        "function_of_another_service",
        "[adopt]\nlambda_function_name = 'key-factory'\n",
        "adopt.lambda_function_name: is 'key-factory', but this stack names it 'kms-key-generator' (from service.name)",
    ),
    (
        "role_named_otherwise",
        "[adopt]\nexecution_role_name = 'kms_key_generator_role'\n",
        "adopt.execution_role_name: is 'kms_key_generator_role', but this stack names it "
        "'kms-key-generator-lambda-execution'",
    ),
    (
        "bucket_not_the_state_bucket",
        "[adopt]\nstate_bucket = 'old-tfstate'\n",
        "adopt.state_bucket: is 'old-tfstate', but this stack names it 'kms-key-generator-tfstate' (from state.bucket)",
    ),
    (
        "table_not_the_lock_table",
        "[adopt]\nstate_lock_table = 'old-lock'\n",
        "adopt.state_lock_table: is 'old-lock', but this stack names it 'kms-key-generator-tflock' "
        "(from state.lock_table)",
    ),
    ("unknown_key", "[adopt]\nstage_id = 'v1'\n", "adopt.stage_id: unknown key (allowed: api_key_id, execution_role"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_ADOPTIONS], ids=[c[0] for c in BAD_ADOPTIONS])
def test_rejects_bad_adoption_naming_file_and_key(tmp_path: Path, text: str, expected: str):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    lines = str(raised.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{config}: ")
    assert expected in lines[0]


def test_rejects_an_api_id_given_as_arn_and_so_its_resource(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(
        STATIC + "[adopt]\nrest_api_id = 'arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5'\nresource_id = 'f6g7h8'\n"
    )
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert str(raised.value).splitlines() == [
        f"{config}: adopt.rest_api_id: must be an API Gateway id such as a1b2c3d4e5 (lowercase letters and digits, "
        "not a name or ARN), got 'arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5'",
        f"{config}: adopt.resource_id: needs a valid adopt.rest_api_id too: the resource is imported as "
        "<rest_api_id>/<resource_id>",
    ]


def test_reports_every_adoption_problem_at_once(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(
        "[adopt]\nrest_api_id = 'a1b2c3d4e5'\napi_key_id = 'k1l2m3n4o5'\nstate_bucket = 'old-tfstate'\n"
        "lambda_function_name = 'key-factory'\n"
    )
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    keys = [line.split(": ")[1] for line in str(raised.value).splitlines()]
    assert keys == ["adopt.rest_api_id", "adopt.api_key_id", "adopt.lambda_function_name", "adopt.state_bucket"]


def test_adoption_follows_the_configured_names(tmp_path: Path):
    config = tmp_path / "adopt.toml"
    config.write_text(
        "[service]\nname = 'keys'\n[state]\nbucket = 'old-tfstate'\nlock_table = 'old-lock'\n"
        "[adopt]\nlog_group_names = ['/aws/lambda/keys', '/aws/lambda/keys-api-key-rotation']\n"
        "ssm_parameter_name = '/APIGateway/APIKeys/keys'\nlambda_function_name = 'keys'\n"
        "state_bucket = 'old-tfstate'\nstate_lock_table = 'old-lock'\n"
    )
    adopt = load_settings(config).adopt
    assert adopt.log_group_names == ["/aws/lambda/keys", "/aws/lambda/keys-api-key-rotation"]
    assert (adopt.state_bucket, adopt.api_key_id) == ("old-tfstate", "")


def test_default_settings_adopt_nothing(tmp_path: Path):
    config = tmp_path / "empty.toml"
    config.write_text("")
    adopt = load_settings(config).adopt
    assert not any(getattr(adopt, name) for name in adopt.__dataclass_fields__)


def test_bad_adoption_stops_the_synth_before_anything_is_written(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text("[adopt]\napi_key_id = 'k1l2m3n4o5'\n")
    outdir = tmp_path / "cdktf.out"
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=PROJECT_ROOT, env=synth_env(outdir, config), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"{config}: adopt.api_key_id: adopting an API key needs rotation.enabled")
    assert not outdir.exists()
