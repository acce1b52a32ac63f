"""CloudWatch log groups that never expire.

Resources: one `aws_cloudwatch_log_group`. Creating a Lambda's group ourselves (instead of letting Lambda
create it on first invocation) is what lets us own its retention and delete it with the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from .rules import LOG_GROUP_PATTERN
from .validation import Problems, matches, one_of

NEVER_EXPIRE = 0
"""CloudWatch's retention value for "never expire" (the original expired its logs: defect 4)."""
RETENTION_DAYS = (
    NEVER_EXPIRE,
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
"""The retention values CloudWatch Logs accepts."""


@dataclass(frozen=True, kw_only=True)
class LogGroupProps:
    name: str
    """Full log group name, e.g. `/aws/lambda/<function>`."""
    retention_in_days: int = NEVER_EXPIRE
    """Days to keep events, one of `RETENTION_DAYS`. Default: never expire."""
    kms_key_arn: str | None = None
    """Customer-managed key encrypting the events (its policy must let CloudWatch Logs use it). Default: AWS
    owned encryption."""


class LogGroup(Construct):
    """A log group; exposes `log_group` (name and ARN for policies and outputs)."""

    def __init__(self, scope: Construct, id: str, props: LogGroupProps) -> None:
        problems = Problems("LogGroup")
        problems.check("name", props.name, matches(LOG_GROUP_PATTERN, "1-512 of letters, digits and _ . / # -"))
        problems.check("retention_in_days", props.retention_in_days, one_of(*RETENTION_DAYS))
        problems.raise_if_any()
        super().__init__(scope, id)
        self.log_group = CloudwatchLogGroup(
            self, "log-group", name=props.name, retention_in_days=props.retention_in_days, kms_key_id=props.kms_key_arn
        )
