"""The SSM SecureString holding the live API key, under its own KMS key."""

from __future__ import annotations

from tests.support.synth import only, ref


def test_parameter_is_encrypted_with_its_own_rotating_key(service):
    parameter = only(service, "aws_ssm_parameter")
    assert parameter["key_id"] == ref(service, "aws_kms_key", "arn", "api-key-parameter")
    assert only(service, "aws_kms_key", "api-key-parameter")["enable_key_rotation"] is True


def test_key_policy_lets_only_ssm_use_the_key(service):
    key_policy = only(service, "aws_kms_key", "api-key-parameter")["policy"]
    assert '"kms:ViaService" = "ssm.us-east-1.amazonaws.com"' in key_policy
    assert ":root" in key_policy


def test_parameter_name_follows_the_service(variant):
    assert only(variant.service, "aws_ssm_parameter")["name"] == "/APIGateway/APIKeys/keys-variant"
