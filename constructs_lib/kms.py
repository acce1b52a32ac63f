"""Customer-managed KMS keys: per-service data keys (SSM parameters, Secrets Manager secrets, tables), the
operations key (logs, alarm topic, Lambda environments) and the state key; and the grants that let a role use them.

Functions, not constructs: each adds `kms-key` and `kms-alias` to the caller's scope, so the resources keep
the addresses they had when each construct declared them itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from . import policy
from .environment import AwsEnvironment
from .validation import KMS_ALIAS, Problems, matches, non_empty

_SERVICE = matches(r"[a-z0-9-]{1,64}", "a service endpoint prefix such as ssm or secretsmanager")
_SID = matches(r"[A-Za-z0-9]{1,64}", "letters and digits only (an IAM statement id)")


@dataclass(frozen=True, kw_only=True)
class ServiceKeyProps:
    description: str
    alias: str
    """`alias/<name>`, never under `alias/aws/` (AWS managed keys)."""
    service: str
    """Service endpoint prefix allowed to use the key on the account's behalf, e.g. `ssm`."""
    sid_prefix: str
    """Names the usage statement (`<prefix>UsesKeyForAccount`), e.g. `Ssm`."""
    environment: AwsEnvironment
    """The account that administers the key and calls through the service, in the service's region."""


def _check_key(problems: Problems, description: str, alias: str) -> None:
    problems.check("description", description, non_empty)
    problems.check("alias", alias, KMS_ALIAS)


def _key(
    scope: Construct, description: str, alias: str, environment: AwsEnvironment, statements: Sequence[dict[str, Any]]
) -> KmsKey:
    key = KmsKey(
        scope,
        "kms-key",
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy.document(
            policy.statement(
                "AccountAdministers",
                ["kms:*"],
                "*",
                principal={"AWS": f"arn:{environment.partition}:iam::{environment.account_id}:root"},
            ),
            *statements,
        ),
    )
    KmsAlias(scope, "kms-alias", name=alias, target_key_id=key.key_id)
    return key


def customer_key(
    scope: Construct,
    *,
    description: str,
    alias: str,
    environment: AwsEnvironment,
    statements: tuple[dict[str, Any], ...] = (),
) -> KmsKey:
    """A rotating key the account administers (so IAM policies grant its use), plus `statements`."""
    problems = Problems("customer_key")
    _check_key(problems, description, alias)
    problems.raise_if_any()
    return _key(scope, description, alias, environment, statements)


def service_key(scope: Construct, props: ServiceKeyProps) -> KmsKey:
    """A rotating key the account administers and only `props.service` in this region may use."""
    problems = Problems("service_key")
    _check_key(problems, props.description, props.alias)
    problems.check("service", props.service, _SERVICE)
    problems.check("sid_prefix", props.sid_prefix, _SID)
    problems.raise_if_any()
    environment = props.environment
    return _key(
        scope,
        props.description,
        props.alias,
        environment,
        (
            policy.statement(
                f"{props.sid_prefix}UsesKeyForAccount",
                ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "*",
                principal={"AWS": "*"},
                condition={
                    "StringEquals": {
                        "kms:ViaService": f"{props.service}.{environment.region}.amazonaws.com",
                        "kms:CallerAccount": environment.account_id,
                    }
                },
            ),
        ),
    )


def operations_key(scope: Construct, *, alias: str, environment: AwsEnvironment) -> KmsKey:
    """Key for the service's operational data: CloudWatch Logs encrypts this account's log groups with it and
    CloudWatch alarms publish to the encrypted alarm topic; functions use it through their IAM roles."""
    description = "Encrypts the service's logs, alarm topic and Lambda environments"
    problems = Problems("operations_key")
    _check_key(problems, description, alias)
    problems.raise_if_any()
    partition, region, account_id = environment.partition, environment.region, environment.account_id
    return _key(
        scope,
        description,
        alias,
        environment,
        (
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


def _key_arns(keys: Sequence[KmsKey]) -> str | list[str]:
    """One key: its ARN; several: the list (the shape IAM shows for each)."""
    return keys[0].arn if len(keys) == 1 else [key.arn for key in keys]


def grant_decrypt(keys: Sequence[KmsKey], grantee: policy.Grantee, *, sid: str) -> None:
    """Let `grantee` decrypt under `keys` (the account administers them, so its IAM policy is enough)."""
    grantee.add_to_role_policy(policy.statement(sid, ["kms:Decrypt"], _key_arns(keys)))


def grant_encrypt_decrypt(keys: Sequence[KmsKey], grantee: policy.Grantee, *, sid: str) -> None:
    """Let `grantee` encrypt, decrypt and make data keys under `keys`: one statement for all of them."""
    grantee.add_to_role_policy(
        policy.statement(sid, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], _key_arns(keys))
    )
