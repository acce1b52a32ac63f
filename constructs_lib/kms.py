"""Customer-managed KMS keys: per-service data keys (SSM parameters, Secrets Manager secrets, tables), the
operations key (logs, alarm topic, Lambda environments) and the state key.

A function, not a construct: it adds `kms-key` and `kms-alias` to the caller's scope, so the resources keep
the addresses they had when each construct declared them itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from . import policy


@dataclass(frozen=True, kw_only=True)
class ServiceKeyProps:
    description: str
    alias: str
    service: str
    """Service endpoint prefix allowed to use the key on the account's behalf, e.g. `ssm`."""
    sid_prefix: str
    """Names the usage statement (`<prefix>UsesKeyForAccount`), e.g. `Ssm`."""
    account_id: str
    partition: str
    region: str


def customer_key(
    scope: Construct, *, description: str, alias: str, account_id: str, partition: str, statements: tuple[dict, ...] = ()
) -> KmsKey:
    """A rotating key the account administers (so IAM policies grant its use), plus `statements`."""
    key = KmsKey(
        scope,
        "kms-key",
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy.document(
            policy.statement(
                "AccountAdministers", ["kms:*"], "*", principal={"AWS": f"arn:{partition}:iam::{account_id}:root"}
            ),
            *statements,
        ),
    )
    KmsAlias(scope, "kms-alias", name=alias, target_key_id=key.key_id)
    return key


def service_key(scope: Construct, props: ServiceKeyProps) -> KmsKey:
    """A rotating key the account administers and only `props.service` in this region may use."""
    return customer_key(
        scope,
        description=props.description,
        alias=props.alias,
        account_id=props.account_id,
        partition=props.partition,
        statements=(
            policy.statement(
                f"{props.sid_prefix}UsesKeyForAccount",
                ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "*",
                principal={"AWS": "*"},
                condition={
                    "StringEquals": {
                        "kms:ViaService": f"{props.service}.{props.region}.amazonaws.com",
                        "kms:CallerAccount": props.account_id,
                    }
                },
            ),
        ),
    )


def operations_key(scope: Construct, *, alias: str, account_id: str, partition: str, region: str) -> KmsKey:
    """Key for the service's operational data: CloudWatch Logs encrypts this account's log groups with it and
    CloudWatch alarms publish to the encrypted alarm topic; functions use it through their IAM roles."""
    return customer_key(
        scope,
        description="Encrypts the service's logs, alarm topic and Lambda environments",
        alias=alias,
        account_id=account_id,
        partition=partition,
        statements=(
            policy.statement(
                "CloudWatchLogsEncryptsOwnLogGroups",
                ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "*",
                principal={"Service": f"logs.{region}.amazonaws.com"},
                condition={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                    }
                },
            ),
            policy.statement(
                "CloudWatchAlarmsPublishToTopic",
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                "*",
                principal={"Service": "cloudwatch.amazonaws.com"},
                condition={"StringEquals": {"aws:SourceAccount": account_id}},
            ),
        ),
    )
