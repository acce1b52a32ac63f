"""API-key rotation infrastructure: secret, rotation Lambda, permission, schedule, ownership."""

from __future__ import annotations

from tests.support.synth import only, ref, resources


ROTATION = "api-key-rotation"


def test_secret_is_encrypted_with_its_own_rotating_key(service):
    assert only(service, "aws_secretsmanager_secret")["kms_key_id"] == ref(service, "aws_kms_key", "arn", ROTATION)
    key = only(service, "aws_kms_key", ROTATION)
    assert key["enable_key_rotation"] is True
    assert '"kms:ViaService" = "secretsmanager.us-east-1.amazonaws.com"' in key["policy"]


def test_secret_is_tagged_for_the_rotation_lambda(service):
    tags = only(service, "aws_secretsmanager_secret")["tags"]
    assert sorted(tags) == ["CostCategory", "KeyName", "Project", "UsagePlan"]
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
    assert function["environment"]["variables"]["SSM_KMS_KEY_ID"] == ref(service, "aws_kms_key", "arn", "api-key-parameter")


def test_rotation_role_is_limited_to_this_secret_keys_plans_and_parameter(service):
    policy = only(service, "aws_iam_role_policy", ROTATION)["policy"]

    def bare(reference: str) -> str:  # inside jsonencode(...) references appear without ${}
        return reference.removeprefix("${").removesuffix("}")

    assert '"Resource" = ' + bare(ref(service, "aws_secretsmanager_secret", "arn")) + "}" in policy
    assert '"secretsmanager:*"' not in policy and '"apigateway:*"' not in policy
    assert "/usageplans/" + ref(service, "aws_api_gateway_usage_plan", "id") + "/keys*" in policy
    assert '"Action" = ["ssm:PutParameter"], "Resource" = ' + bare(ref(service, "aws_ssm_parameter", "arn")) in policy


def test_destroy_invokes_the_rotation_lambda_to_delete_its_keys(service):
    cleanup = only(service, "aws_lambda_invocation", ROTATION)
    assert cleanup["lifecycle_scope"] == "CRUD"
    assert cleanup["function_name"] == ref(service, "aws_lambda_function", "function_name", ROTATION)
    assert cleanup["input"] == '${jsonencode({"Cleanup" = {"SecretId" = ' + ref(service, "aws_secretsmanager_secret", "arn")[2:-1] + "}})}"


def test_rotation_mode_leaves_api_keys_to_the_lambda(service):
    assert resources(service, "aws_api_gateway_api_key") == {}
    assert resources(service, "aws_api_gateway_usage_plan_key") == {}
    assert "api_key_value" not in service["output"]


def test_static_mode_has_no_rotation(variant):
    stack = variant.service
    assert resources(stack, "aws_secretsmanager_secret") == {}
    assert resources(stack, "aws_secretsmanager_secret_rotation") == {}
    assert all(not name.startswith(ROTATION) for name in resources(stack, "aws_lambda_function"))
