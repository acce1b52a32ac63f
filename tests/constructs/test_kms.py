"""`kms.service_key`, `kms.operations_key` and the KMS grants, in a scratch stack."""

from __future__ import annotations

import pytest

from tests.constructs.helpers import Grantee, is_reference, one


def test_service_key_rotates_and_lets_only_its_service_use_it(stack, synth, environment):
    from constructs_lib.kms import ServiceKeyProps, service_key

    service_key(
        stack,
        ServiceKeyProps(
            description="Encrypts a parameter",
            alias="alias/demo-ssm",
            service="ssm",
            sid_prefix="Ssm",
            environment=environment,
        ),
    )
    document = synth(stack)
    key = one(document, "aws_kms_key")
    assert key["enable_key_rotation"] is True and key["deletion_window_in_days"] == 30
    assert '"Sid" = "AccountAdministers"' in key["policy"]
    assert '"AWS" = "arn:aws:iam::123456789012:root"' in key["policy"]
    assert '"Sid" = "SsmUsesKeyForAccount"' in key["policy"]
    assert '"kms:ViaService" = "ssm.eu-west-1.amazonaws.com"' in key["policy"]
    alias = one(document, "aws_kms_alias")
    assert alias["name"] == "alias/demo-ssm" and is_reference(alias["target_key_id"], "aws_kms_key", "key_id")


def test_operations_key_lets_logs_and_alarms_use_it(stack, synth, environment):
    from constructs_lib.kms import operations_key

    operations_key(stack, alias="alias/demo-ops", environment=environment)
    policy = one(synth(stack), "aws_kms_key")["policy"]
    assert '"Service" = "logs.eu-west-1.amazonaws.com"' in policy
    assert "arn:aws:logs:eu-west-1:123456789012:log-group:*" in policy
    assert '"Sid" = "CloudWatchAlarmsPublishToTopic"' in policy


def test_grants_name_one_key_as_a_string_and_several_as_a_list(stack, environment):
    from constructs_lib.kms import customer_key, grant_decrypt, grant_encrypt_decrypt

    first = customer_key(stack, description="first", alias="alias/first", environment=environment)
    grantee = Grantee()
    grant_decrypt([first], grantee, sid="DecryptFirst")
    grant_encrypt_decrypt([first, first], grantee, sid="UseBoth")
    decrypt, use = grantee.statements
    assert decrypt["Sid"] == "DecryptFirst" and decrypt["Action"] == ["kms:Decrypt"]
    assert isinstance(decrypt["Resource"], str)
    assert use["Action"] == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    assert isinstance(use["Resource"], list) and len(use["Resource"]) == 2


def test_rejects_bad_service_key_props_naming_each_prop(stack, environment):
    from constructs_lib.kms import ServiceKeyProps, service_key

    with pytest.raises(ValueError) as raised:
        service_key(
            stack,
            ServiceKeyProps(
                description="", alias="demo-ssm", service="SSM", sid_prefix="Ssm-1", environment=environment
            ),
        )
    assert str(raised.value) == (
        "service_key.description: must not be empty, got ''\n"
        "service_key.alias: must be an alias name alias/<name> (not under alias/aws/), got 'demo-ssm'\n"
        "service_key.service: must be a service endpoint prefix such as ssm or secretsmanager, got 'SSM'\n"
        "service_key.sid_prefix: must be letters and digits only (an IAM statement id), got 'Ssm-1'"
    )


def test_rejects_an_alias_under_aws(stack, environment):
    from constructs_lib.kms import operations_key

    with pytest.raises(
        ValueError,
        match=r"^operations_key\.alias: must be an alias name alias/<name> \(not under "
        r"alias/aws/\), got 'alias/aws/ops'$",
    ):
        operations_key(stack, alias="alias/aws/ops", environment=environment)
