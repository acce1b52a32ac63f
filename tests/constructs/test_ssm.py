"""`ssm.SecureParameter`, in a scratch stack."""

from __future__ import annotations

import re

import pytest

from tests.constructs.helpers import Grantee, is_reference, one, resources


def _props(environment, **overrides):
    from constructs_lib.ssm import SecureParameterProps

    props = {
        "name": "/demo/api-key",
        "value": "pending",
        "value_owned_elsewhere": True,
        "description": "Live key",
        "kms_alias": "alias/demo-ssm",
        "environment": environment,
    }
    return SecureParameterProps(**(props | overrides))


def test_parameter_is_a_secure_string_under_its_own_key(stack, synth, environment):
    from constructs_lib.ssm import SecureParameter

    SecureParameter(stack, "secret", _props(environment))
    document = synth(stack)
    parameter = one(document, "aws_ssm_parameter")
    assert list(resources(document, "aws_ssm_parameter")) == ["secret_parameter"]
    assert parameter["type"] == "SecureString" and parameter["name"] == "/demo/api-key"
    assert is_reference(parameter["key_id"], "aws_kms_key", "arn")
    # Something else keeps the value current: Terraform sets it once.
    assert parameter["lifecycle"] == {"ignore_changes": ["value"]}
    assert '"Sid" = "SsmUsesKeyForAccount"' in one(document, "aws_kms_key")["policy"]
    assert one(document, "aws_kms_alias")["name"] == "alias/demo-ssm"


def test_a_value_terraform_owns_is_a_reference(stack, synth, environment):
    from constructs_lib.cdk import TerraformVariable
    from constructs_lib.ssm import SecureParameter

    secret = TerraformVariable(stack, "secret", type="string", sensitive=True)
    SecureParameter(stack, "parameter", _props(environment, value=secret.string_value, value_owned_elsewhere=False))
    parameter = one(synth(stack), "aws_ssm_parameter")
    assert parameter["value"] == "${var.secret}" and "lifecycle" not in parameter


def test_grant_write_lets_a_grantee_put_values(stack, synth, environment):
    from constructs_lib import policy
    from constructs_lib.cdk import TerraformOutput
    from constructs_lib.ssm import SecureParameter

    parameter = SecureParameter(stack, "secret", _props(environment))
    grantee = Grantee()
    parameter.grant_write(grantee)
    TerraformOutput(stack, "granted", value=policy.document(*grantee.statements))
    assert re.fullmatch(
        r'\$\{jsonencode\(\{"Version" = "2012-10-17", "Statement" = \[\{"Sid" = "UpdateSsmParameter", "Effect" = '
        r'"Allow", "Action" = \["ssm:PutParameter", "ssm:GetParameter"\], "Resource" = '
        r"aws_ssm_parameter\.secret_parameter_[0-9A-F]{8}\.arn\}\]\}\)\}",
        synth(stack)["output"]["granted"]["value"],
    )


def test_rejects_a_literal_value_terraform_would_own_without_showing_it(stack, environment):
    from constructs_lib.ssm import SecureParameter

    with pytest.raises(ValueError) as raised:
        SecureParameter(stack, "parameter", _props(environment, value="hunter2hunter2", value_owned_elsewhere=False))
    assert str(raised.value) == (
        "SecureParameter.value: must be a Terraform reference unless value_owned_elsewhere is set, "
        "got a literal (not shown)"
    )


def test_rejects_bad_parameter_props_naming_each_prop(stack, environment):
    from constructs_lib.ssm import SecureParameter

    with pytest.raises(ValueError) as raised:
        SecureParameter(stack, "parameter", _props(environment, name="", value="", kms_alias="alias/aws/ssm"))
    assert str(raised.value) == (
        "SecureParameter.name: must be an SSM parameter name (letters, digits and _ . - /), got ''\n"
        "SecureParameter.value: must not be empty, got ''\n"
        "SecureParameter.kms_alias: must be an alias name alias/<name> (not under alias/aws/), got 'alias/aws/ssm'"
    )
    assert stack.node.try_find_child("parameter") is None  # nothing half-built
