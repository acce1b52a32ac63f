"""`lambda_function.LambdaFunction`, in a scratch stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.constructs.helpers import is_reference, one, resources, sids


@pytest.fixture
def code(tmp_path: Path):
    from constructs_lib.lambda_function import LambdaCode

    source = tmp_path / "src"
    source.mkdir()
    (source / "handler.py").write_text("def lambda_handler(event, context):\n    return event\n")
    return LambdaCode(source_dir=source, staging_dir=tmp_path / "staging")


def _props(code, **overrides):
    from constructs_lib.lambda_function import LambdaFunctionProps, LambdaHardening

    props = {
        "function_name": "demo",
        "role_name": "demo-role",
        "code": code,
        "environment": {"MODE": "test"},
        "hardening": LambdaHardening(
            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k", reserved_concurrency=2, tracing=True
        ),
    }
    return LambdaFunctionProps(**(props | overrides))


def test_function_has_its_log_group_role_and_hardening(stack, synth, code):
    from constructs_lib.lambda_function import LambdaFunction

    LambdaFunction(stack, "fn", _props(code))
    document = synth(stack)
    function = one(document, "aws_lambda_function")
    assert list(resources(document, "aws_lambda_function")) == ["fn_function"]
    assert function["function_name"] == "demo" and function["handler"] == "handler.lambda_handler"
    assert function["environment"] == {"variables": {"MODE": "test"}}
    assert function["kms_key_arn"] == "arn:aws:kms:eu-west-1:123456789012:key/k"
    assert function["reserved_concurrent_executions"] == 2
    assert function["tracing_config"] == {"mode": "Active"}
    assert is_reference(function["role"], "aws_iam_role", "arn")
    assert one(document, "aws_cloudwatch_log_group")["name"] == "/aws/lambda/demo"
    policy = one(document, "aws_iam_role_policy")
    assert policy["name"] == "demo-role-policy"
    assert sids(policy["policy"]) == ["WriteOwnLogGroup", "DecryptEnvironment", "WriteTraces"]


def test_exposes_references_to_its_function(stack, code):
    from constructs_lib.cdk import Token
    from constructs_lib.lambda_function import LambdaFunction

    function = LambdaFunction(stack, "fn", _props(code))
    for value in (function.function_name, function.arn, function.invoke_arn, function.role_arn, function.role_name):
        assert Token.is_unresolved(value)


def test_grants_come_after_the_callers_statements_and_before_hardening(stack, synth, code):
    from constructs_lib import policy
    from constructs_lib.lambda_function import LambdaFunction

    function = LambdaFunction(
        stack, "fn", _props(code, policy_statements=(policy.statement("Given", ["s3:GetObject"], "*"),))
    )
    function.add_to_role_policy(policy.statement("AddedFirst", ["sqs:SendMessage"], "*"))
    function.add_to_role_policy(policy.statement("AddedSecond", ["sns:Publish"], "*"))
    document = one(synth(stack), "aws_iam_role_policy")["policy"]
    assert sids(document) == [
        "WriteOwnLogGroup",
        "Given",
        "AddedFirst",
        "AddedSecond",
        "DecryptEnvironment",
        "WriteTraces",
    ]


def test_add_environment_merges_variables(stack, synth, code):
    from constructs_lib.lambda_function import LambdaFunction

    function = LambdaFunction(stack, "fn", _props(code))
    function.add_environment({"CALLER": "known-later", "MODE": "replaced"})
    variables = one(synth(stack), "aws_lambda_function")["environment"]["variables"]
    assert variables == {"CALLER": "known-later", "MODE": "replaced"}


def test_an_environment_added_later_is_still_encrypted(stack, synth, code):
    from constructs_lib.lambda_function import LambdaFunction

    function = LambdaFunction(stack, "fn", _props(code, environment={}))
    function.add_environment({"CALLER": "known-later"})
    function = one(synth(stack), "aws_lambda_function")
    assert function["environment"] == {"variables": {"CALLER": "known-later"}}
    assert function["kms_key_arn"] == "arn:aws:kms:eu-west-1:123456789012:key/k"


def test_rejects_bad_function_props_naming_each_prop(stack, code, tmp_path):
    from dataclasses import replace

    from constructs_lib.lambda_function import LambdaFunction

    with pytest.raises(ValueError) as raised:
        LambdaFunction(
            stack,
            "fn",
            _props(
                replace(code, source_dir=tmp_path / "missing"),
                function_name="arn:aws:lambda:eu-west-1:123456789012:function:demo",
                runtime="nodejs22.x",
                memory_size=64,
                timeout=901,
                environment={"BAD-NAME": "x"},
            ),
        )
    assert str(raised.value) == "\n".join(
        [
            "LambdaFunction.function_name: must be 1-64 letters, digits, '-' or '_' (a name, not an ARN), "
            "got 'arn:aws:lambda:eu-west-1:123456789012:function:demo'",
            "LambdaFunction.runtime: must be a Python runtime such as python3.13, got 'nodejs22.x'",
            "LambdaFunction.memory_size: must be between 128 and 10240, got 64",
            "LambdaFunction.timeout: must be between 1 and 900, got 901",
            "LambdaFunction.environment: key must be an environment variable name (a letter, then letters, digits "
            "or _), got 'BAD-NAME'",
            f"LambdaFunction.code.source_dir: must be an existing folder, got {tmp_path / 'missing'!r}",
        ]
    )


def test_rejects_a_bad_reserved_concurrency(stack, code):
    from constructs_lib.lambda_function import LambdaHardening

    hardening = LambdaHardening(kms_key_arn="arn:aws:kms:k", reserved_concurrency=-2, tracing=False)
    from constructs_lib.lambda_function import LambdaFunction

    with pytest.raises(
        ValueError,
        match=r"^LambdaFunction\.hardening\.reserved_concurrency: must be -1 \(none "
        r"reserved\) or >= 0, got -2$",
    ):
        LambdaFunction(stack, "fn", _props(code, hardening=hardening))
