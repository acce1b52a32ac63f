"""Where a stack deploys: the account, partition and region that ARNs and key policies name.

One value for every construct that needs them (keys, the SSM parameter, the token table, rotation, the state
backend), so they are no longer three props repeated in each props class.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class AwsEnvironment:
    account_id: str
    """The deploying account: a reference to `aws_caller_identity`, known at apply time (or a literal in tests)."""
    partition: str
    """`aws`, `aws-cn`, `aws-us-gov`, ...: a reference to `aws_partition`, so ARNs hold in every partition."""
    region: str
    """The provider's region, a literal from settings."""

    @classmethod
    def of_provider(cls, scope: Construct, *, region: str) -> AwsEnvironment:
        """The account and partition the stack's provider deploys to, read by the data sources `current` and
        `partition` added to `scope` (the stack, so their addresses stay `data.aws_caller_identity.current` and
        `data.aws_partition.partition`)."""
        return cls(
            account_id=DataAwsCallerIdentity(scope, "current").account_id,
            partition=DataAwsPartition(scope, "partition").partition,
            region=region,
        )
