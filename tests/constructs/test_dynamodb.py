"""`dynamodb.encrypted_table` and `dynamodb.grant_get_item`, in a scratch stack."""

from __future__ import annotations

import pytest

from tests.constructs.helpers import Grantee, is_reference, one, resources


def test_table_is_on_demand_recoverable_encrypted_and_protected(stack, synth):
    from constructs_lib.dynamodb import encrypted_table

    encrypted_table(
        stack, "table", name="demo-tokens", hash_key="token_hash", kms_key_arn="arn:aws:kms:k", deletion_protection=True
    )
    document = synth(stack)
    assert list(resources(document, "aws_dynamodb_table")) == ["table"]
    table = one(document, "aws_dynamodb_table")
    assert table["name"] == "demo-tokens" and table["hash_key"] == "token_hash"
    assert table["attribute"] == [{"name": "token_hash", "type": "S"}]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["server_side_encryption"] == {"enabled": True, "kms_key_arn": "arn:aws:kms:k"}
    assert table["deletion_protection_enabled"] is True


def test_grant_get_item_names_the_table(stack, synth):
    from constructs_lib.dynamodb import encrypted_table, grant_get_item

    table = encrypted_table(
        stack,
        "table",
        name="demo-tokens",
        hash_key="token_hash",
        kms_key_arn="arn:aws:kms:k",
        deletion_protection=False,
    )
    grantee = Grantee()
    grant_get_item(table, grantee, sid="LookUp")
    (statement,) = grantee.statements
    assert statement["Sid"] == "LookUp" and statement["Action"] == ["dynamodb:GetItem"]
    assert statement["Effect"] == "Allow"
    # A reference to the table's ARN (a token until synth).
    assert "${TfToken[" in statement["Resource"]


def test_rejects_bad_table_props_naming_each_prop(stack):
    from constructs_lib.dynamodb import encrypted_table

    with pytest.raises(ValueError) as raised:
        encrypted_table(stack, "table", name="ab", hash_key="", kms_key_arn="", deletion_protection=True)
    assert str(raised.value) == (
        "encrypted_table.name: must be 3-255 of A-Z a-z 0-9 _ . -, got 'ab'\n"
        "encrypted_table.hash_key: must be 1-255 characters, got ''\n"
        "encrypted_table.kms_key_arn: must not be empty, got ''"
    )


def test_a_reference_is_never_judged(stack, synth, environment):
    from constructs_lib.dynamodb import encrypted_table
    from constructs_lib.kms import customer_key

    key = customer_key(stack, description="k", alias="alias/k", environment=environment)
    encrypted_table(stack, "table", name="demo", hash_key="id", kms_key_arn=key.arn, deletion_protection=True)
    table = one(synth(stack), "aws_dynamodb_table")
    assert is_reference(table["server_side_encryption"]["kms_key_arn"], "aws_kms_key", "arn")
