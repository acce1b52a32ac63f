"""The one shape of DynamoDB table this project uses: a string hash key, on-demand, recoverable, encrypted; and the
grant that lets a role read its items.

A function, not a construct: it adds the table to the caller's scope under the caller's id, so each table
keeps the address it had when its construct declared it directly.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from constructs import Construct

from . import policy
from .rules import TABLE_NAME_PATTERN
from .validation import Problems, matches, non_empty

_TABLE_NAME = matches(TABLE_NAME_PATTERN, "3-255 of A-Z a-z 0-9 _ . -")
_ATTRIBUTE = matches(r".{1,255}", "1-255 characters")


def encrypted_table(
    scope: Construct, id: str, *, name: str, hash_key: str, kms_key_arn: str, deletion_protection: bool
) -> DynamodbTable:
    """On-demand table keyed by string `hash_key`, with point-in-time recovery and SSE under `kms_key_arn`.

    `deletion_protection` makes DynamoDB refuse `DeleteTable` (so `terraform destroy` too) until it is switched
    off: both tables hold what a mistaken destroy must not take (the state lock, every issued token). Required,
    so no caller forgets to decide.
    """
    problems = Problems("encrypted_table")
    problems.check("name", name, _TABLE_NAME)
    problems.check("hash_key", hash_key, _ATTRIBUTE)
    problems.check("kms_key_arn", kms_key_arn, non_empty)
    problems.raise_if_any()
    return DynamodbTable(
        scope,
        id,
        name=name,
        hash_key=hash_key,
        attribute=[DynamodbTableAttribute(name=hash_key, type="S")],
        billing_mode="PAY_PER_REQUEST",
        point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
        server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=kms_key_arn),
        deletion_protection_enabled=deletion_protection,
    )


def grant_get_item(table: DynamodbTable, grantee: policy.Grantee, *, sid: str) -> None:
    """Let `grantee` read single items of `table` (`GetItem` only: no scans, no queries, no writes). Decrypting
    them also needs the table key (`kms.grant_decrypt`)."""
    grantee.add_to_role_policy(policy.statement(sid, ["dynamodb:GetItem"], table.arn))
