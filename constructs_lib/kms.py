"""Customer-managed KMS keys for one AWS service's data (SSM parameters, Secrets Manager secrets).

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


def service_key(scope: Construct, props: ServiceKeyProps) -> KmsKey:
    """A rotating key the account administers and only `props.service` in this region may use."""
    key = KmsKey(
        scope,
        "kms-key",
        description=props.description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy.document(
            policy.statement(
                "AccountAdministers", ["kms:*"], "*", principal={"AWS": f"arn:{props.partition}:iam::{props.account_id}:root"}
            ),
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
    KmsAlias(scope, "kms-alias", name=props.alias, target_key_id=key.key_id)
    return key
