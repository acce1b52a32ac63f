"""API-key rotation infrastructure: secret, rotation Lambda, permission, schedule, ownership."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from constructs_lib.settings import ROTATION_MAX_LIVE_KEYS, RotationSettings, SettingsError, load_settings
from tests.support.lambdas import load_handler
from tests.support.synth import only, ref, resources

ROTATION = "api-key-rotation"


def test_secret_is_encrypted_with_its_own_rotating_key(service):
    assert only(service, "aws_secretsmanager_secret")["kms_key_id"] == ref(service, "aws_kms_key", "arn", ROTATION)
    key = only(service, "aws_kms_key", ROTATION)
    assert key["enable_key_rotation"] is True
    assert '"kms:ViaService" = "secretsmanager.us-east-1.amazonaws.com"' in key["policy"]


def test_secret_is_tagged_for_the_rotation_lambda(service):
    tags = only(service, "aws_secretsmanager_secret")["tags"]
    assert sorted(tags) == ["CostCategory", "KeyName", "Project"]
    assert tags["KeyName"] == "kms-key-generator-v1"
    assert tags["Project"] == "kms-key-generator" and tags["CostCategory"] == "security"


def test_schedule_rotates_with_the_configured_period(service):
    schedule = only(service, "aws_secretsmanager_secret_rotation")
    assert schedule["rotation_rules"] == {"automatically_after_days": 30}
    assert schedule["rotation_lambda_arn"] == ref(service, "aws_lambda_function", "arn", ROTATION)
    assert schedule["secret_id"] == ref(service, "aws_secretsmanager_secret", "id")

    def address(rtype: str) -> str:
        return ref(service, rtype, "id", ROTATION).removeprefix("${").removesuffix(".id}")

    assert schedule["depends_on"] == [address("aws_lambda_permission"), address("aws_lambda_invocation")]
    permission = only(service, "aws_lambda_permission", ROTATION)
    assert permission["principal"] == "secretsmanager.amazonaws.com"
    assert permission["source_arn"] == ref(service, "aws_secretsmanager_secret", "arn")


def test_rotation_lambda_has_its_own_role_and_never_expiring_logs(service):
    function = only(service, "aws_lambda_function", ROTATION)
    assert function["function_name"] == "kms-key-generator-api-key-rotation"
    assert function["role"] == ref(service, "aws_iam_role", "arn", ROTATION)
    group = only(service, "aws_cloudwatch_log_group", ROTATION)
    assert group == {**group, "name": "/aws/lambda/kms-key-generator-api-key-rotation", "retention_in_days": 0}
    parameter_key = ref(service, "aws_kms_key", "arn", "api-key-parameter")
    assert function["environment"]["variables"]["SSM_KMS_KEY_ID"] == parameter_key


def test_rotation_role_statements_are_the_ones_the_evaluation_proves(service):
    """What each statement allows is proven by evaluation in test_least_privilege_rotation.py; here, that the role
    has exactly these statements, and no wildcard action."""
    policy = only(service, "aws_iam_role_policy", ROTATION)["policy"]
    sids = re.findall(r'"Sid" = "(\w+)"', policy)
    assert sids == [
        "WriteOwnLogGroup",
        "RotateThisSecret",
        "CreateKeysTaggedForThisSecret",
        "ReadAndDeleteThisSecretsKeys",
        "AttachKeysToUsagePlans",
        "FindKeysUsagePlans",
        "UpdateSsmParameter",
        "UseKeys",
        "DecryptEnvironment",
        "WriteTraces",
    ]
    assert '"secretsmanager:*"' not in policy and '"apigateway:*"' not in policy and "/tags/" not in policy


def test_the_function_gets_the_grace_window_from_the_settings(service):
    variables = only(service, "aws_lambda_function", ROTATION)["environment"]["variables"]
    assert variables["ROTATION_GRACE_HOURS"] == "24"


ROTATION_SETTINGS = [
    ("[rotation]\ngrace_hours = 0\n", "rotation.grace_hours: must be >= 1, got 0"),
    ("[rotation]\ngrace_hours = 1.5\n", "rotation.grace_hours: must be an integer, got float 1.5"),
    (
        "[rotation]\ngrace_hours = 720\n",
        "rotation.grace_hours: must be below rotation.days * 24 (720), so the previous key leaves its grace before the "
        "next scheduled rotation, got 720",
    ),
    (
        "[rotation]\ndays = 1\ngrace_hours = 24\n",
        "rotation.grace_hours: must be below rotation.days * 24 (24), so the previous key leaves its grace before the "
        "next scheduled rotation, got 24",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ROTATION_SETTINGS, ids=["zero", "fraction", "default-period", "one-day"])
def test_grace_hours_is_validated_naming_file_and_key(tmp_path: Path, text: str, expected: str):
    config = tmp_path / "bad.toml"
    config.write_text(text)

    with pytest.raises(SettingsError) as raised:
        load_settings(config)

    assert str(raised.value) == f"{config}: {expected}"


def test_grace_hours_defaults_to_a_day_and_may_approach_the_period(tmp_path: Path):
    config = tmp_path / "rotation.toml"
    config.write_text("[rotation]\ndays = 2\ngrace_hours = 47\n")

    assert load_settings(config).rotation.grace_hours == 47
    assert RotationSettings().grace_hours == 24


def test_destroy_invokes_the_rotation_lambda_to_delete_its_keys(service):
    cleanup = only(service, "aws_lambda_invocation", ROTATION)
    assert cleanup["lifecycle_scope"] == "CRUD"
    assert cleanup["function_name"] == ref(service, "aws_lambda_function", "function_name", ROTATION)
    secret_arn = ref(service, "aws_secretsmanager_secret", "arn")[2:-1]
    assert cleanup["input"] == '${jsonencode({"Cleanup" = {"SecretId" = ' + secret_arn + "}})}"


def test_rotation_mode_leaves_api_keys_to_the_lambda(service):
    assert resources(service, "aws_api_gateway_api_key") == {}
    assert resources(service, "aws_api_gateway_usage_plan_key") == {}
    assert "api_key_value" not in service["output"]


def test_static_mode_has_no_rotation(variant):
    stack = variant.service
    assert resources(stack, "aws_secretsmanager_secret") == {}
    assert resources(stack, "aws_secretsmanager_secret_rotation") == {}
    assert all(not name.startswith(ROTATION) for name in resources(stack, "aws_lambda_function"))


def test_the_key_quota_counts_as_many_service_keys_as_rotation_may_keep_live():
    """Settings reserve the rotation function's cap on live keys out of the region's API key quota."""
    handler = load_handler("api_key_rotation", "api_key_rotation_cap")
    assert ROTATION_MAX_LIVE_KEYS == handler.MAX_LIVE_KEYS
