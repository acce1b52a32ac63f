"""The key-factory Lambda: packaging, runtime, its log group, and a least-privilege role."""

from __future__ import annotations

import zipfile

from tests.support.synth import SERVICE_STACK, only, ref


def test_function_runs_a_current_python_runtime(service):
    function = only(service, "aws_lambda_function", "key-generator")
    assert function["runtime"] in ("python3.12", "python3.13")
    assert function["handler"] == "handler.lambda_handler"
    assert function["function_name"] == "kms-key-generator"


def test_function_depends_on_its_log_group_and_role_policy(service):
    function = only(service, "aws_lambda_function", "key-generator")
    group = ref(service, "aws_cloudwatch_log_group", "id", "key-generator").removeprefix("${").removesuffix(".id}")
    role_policy = ref(service, "aws_iam_role_policy", "id", "key-generator").removeprefix("${").removesuffix(".id}")
    # The policy first: the rotation runs during the same apply and needs its rights in place.
    assert function["depends_on"] == [group, role_policy]
    assert only(service, "aws_cloudwatch_log_group", "key-generator")["name"] == "/aws/lambda/kms-key-generator"


def test_code_assets_hold_only_the_handler_and_shared_sources(synth):
    # Plus, for the key generator, the tenant policies generated from settings (tests/synth/test_tenant_policy.py).
    expected = {
        "key-generator": ["handler.py", "structured_log.py", "tenants.json"],
        "api-key-rotation": ["handler.py", "structured_log.py"],
    }
    for prefix, names in expected.items():
        function = only(synth.service, "aws_lambda_function", prefix)
        with zipfile.ZipFile(synth.stack_dir(SERVICE_STACK) / function["filename"]) as zipped:
            assert sorted(zipped.namelist()) == names


def test_function_is_configured_from_settings(service, variant):
    assert only(service, "aws_lambda_function", "key-generator")["environment"] == {
        "variables": {
            "ALLOWED_ACCOUNTS": "",
            "ALLOWED_REGIONS": "",
            "CROSS_ACCOUNT_ROLE_NAME": "kms-key-generator-cross-account",
            "KEY_FACTORY_ROLE_ARN": ref(service, "aws_iam_role", "arn", "key-generator"),
            "OPERATOR_SECRET_ARN": ref(service, "aws_secretsmanager_secret", "arn", "api-key-rotation"),
            "SERVICE_NAME": "kms-key-generator",
        }
    }
    assert (
        only(variant.service, "aws_lambda_function", "key-generator")["environment"]["variables"]["ALLOWED_ACCOUNTS"]
        == "111122223333"
    )


def test_role_may_only_write_its_own_log_group(service):
    policy = only(service, "aws_iam_role_policy", "key-generator")["policy"]
    assert '"Action" = ["logs:CreateLogStream", "logs:PutLogEvents"]' in policy
    assert ref(service, "aws_cloudwatch_log_group", "arn", "key-generator") + ":*" in policy
    assert "logs:CreateLogGroup" not in policy


# What the role may do with KMS keys, roles and API key tags is proven by evaluating its policy, call by call,
# in tests/synth/test_least_privilege.py.


def test_role_trusts_only_lambda(service):
    trust = only(service, "aws_iam_role", "key-generator")["assume_role_policy"]
    assert '"Principal" = {"Service" = "lambda.amazonaws.com"}' in trust
