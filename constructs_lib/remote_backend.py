"""Remote Terraform state: a hardened S3 bucket and a DynamoDB lock table.

Resources: KMS key + alias (state encryption, rotation on, key policy), S3 bucket with versioning (every
state version kept: each is a rollback point and an audit record), SSE-KMS default
encryption, all four public-access blocks, `BucketOwnerEnforced` ownership and a bucket policy refusing
requests without TLS and uploads not encrypted under the state key; DynamoDB lock table (`LockID`, on-demand,
point-in-time recovery, encrypted with the same key, deletion protection unless turned off).

The state holds every API key value, so it must be encrypted under the customer key, not S3's: the bucket's
default encryption alone does not ensure that, because a client that asks for `AES256` (Terraform's S3 backend
with `encrypt = true` and no `kms_key_id`) overrides it. The policy refuses such uploads; the service stack's
backend names the key (`StateSettings.backend_kms_key_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from . import policy
from .dynamodb import encrypted_table
from .environment import AwsEnvironment
from .kms import customer_key
from .rules import BUCKET_PATTERN
from .validation import KMS_ALIAS, Problems, matches

_BUCKET = matches(BUCKET_PATTERN, "an S3 bucket name (3-63 lowercase letters, digits, . or -)")


@dataclass(frozen=True, kw_only=True)
class RemoteBackendProps:
    bucket_name: str
    """Globally unique name of the state bucket."""
    lock_table_name: str
    """Name of the DynamoDB table Terraform locks state with (`LockID` hash key)."""
    kms_alias: str
    """Alias of the key that encrypts state objects and the lock table."""
    environment: AwsEnvironment
    """The account that administers the state key."""
    deletion_protection: bool = True
    """DynamoDB deletion protection on the lock table."""


class RemoteBackend(Construct):
    """State bucket and lock table; exposes `bucket`, `lock_table` and `kms_key`."""

    def __init__(self, scope: Construct, id: str, props: RemoteBackendProps) -> None:
        problems = Problems("RemoteBackend")
        problems.check("bucket_name", props.bucket_name, _BUCKET)
        problems.check("kms_alias", props.kms_alias, KMS_ALIAS)
        problems.raise_if_any()  # the lock table validates its name (`dynamodb.encrypted_table`)
        super().__init__(scope, id)
        self.kms_key = customer_key(
            self,
            description=f"Encrypts Terraform state in {props.bucket_name}",
            alias=props.kms_alias,
            environment=props.environment,
        )

        self.bucket = S3Bucket(self, "bucket", bucket=props.bucket_name)
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms", kms_master_key_id=self.kms_key.arn
                        )
                    ),
                    bucket_key_enabled=True,
                )
            ],
        )
        S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=self.bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        alias = cast(KmsAlias, self.node.find_child("kms-alias"))  # added by `customer_key` above
        objects = f"{self.bucket.arn}/*"
        S3BucketPolicy(
            self,
            "policy",
            bucket=self.bucket.id,
            policy=policy.document(
                policy.statement(
                    "DenyInsecureTransport",
                    ["s3:*"],
                    [self.bucket.arn, objects],
                    effect="Deny",
                    principal="*",
                    condition={"Bool": {"aws:SecureTransport": "false"}},
                ),
                # A missing header counts as "not equal" (no IfExists): every upload must ask for SSE-KMS.
                policy.statement(
                    "DenyUploadsNotSseKms",
                    ["s3:PutObject"],
                    objects,
                    effect="Deny",
                    principal="*",
                    condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
                ),
                # ... and with the state key, however the backend names it (key ARN or id, alias ARN or name).
                policy.statement(
                    "DenyUploadsUnderOtherKeys",
                    ["s3:PutObject"],
                    objects,
                    effect="Deny",
                    principal="*",
                    condition={
                        "StringNotEquals": {
                            "s3:x-amz-server-side-encryption-aws-kms-key-id": [
                                self.kms_key.arn,
                                self.kms_key.key_id,
                                alias.arn,
                                props.kms_alias,
                            ]
                        }
                    },
                ),
            ),
        )

        # Terraform's S3 backend locks on a string `LockID` hash key.
        self.lock_table = encrypted_table(
            self,
            "lock-table",
            name=props.lock_table_name,
            hash_key="LockID",
            kms_key_arn=self.kms_key.arn,
            deletion_protection=props.deletion_protection,
        )
