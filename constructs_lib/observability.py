"""Access logging for the API: who called, as which tenant/key, with what result.

Resources (`ApiAccessLogs`): the access log group (`cloudwatch.LogGroup`, never expires, optionally under a
customer key) and, optionally, the account-level API Gateway CloudWatch role (`aws_api_gateway_account` +
IAM role) that API Gateway needs before any stage may write access or execution logs. That setting is one
per account and region: turn it off when another stack already owns it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.api_gateway_account import ApiGatewayAccount
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from . import policy
from .cloudwatch import LogGroup, LogGroupProps
from .rules import ROLE_NAME_PATTERN
from .validation import Problems, matches

_ROLE_NAME = matches(ROLE_NAME_PATTERN, "an IAM role name (1-64 of letters, digits and +=,.@_-)")

# One JSON object per request. `tenant` comes from the token authorizer's context; with x-api-key callers
# the API key id identifies the tenant instead.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "sourceIp": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "apiKeyId": "$context.identity.apiKeyId",
        "tenant": "$context.authorizer.tenant_id",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "errorMessage": "$context.error.message",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True, kw_only=True)
class ApiAccessLogsProps:
    log_group_name: str | None
    """None: no access logs (the account role alone, for execution logs)."""
    kms_key_arn: str | None = None
    account_role_name: str | None
    """Name of the account-level CloudWatch role to create. None: another stack owns it."""


class ApiAccessLogs(Construct):
    """Exposes `log_group` and `log_group_arn` (or None) and `account` (the account setting, or None) for the stage
    to depend on. The log group validates its name (`cloudwatch.LogGroup`)."""

    def __init__(self, scope: Construct, id: str, props: ApiAccessLogsProps) -> None:
        if props.account_role_name is not None:
            problems = Problems("ApiAccessLogs")
            problems.check("account_role_name", props.account_role_name, _ROLE_NAME)
            problems.raise_if_any()
        super().__init__(scope, id)
        self.log_group = (
            LogGroup(self, "logs", LogGroupProps(name=props.log_group_name, kms_key_arn=props.kms_key_arn)).log_group
            if props.log_group_name
            else None
        )
        self.account: ApiGatewayAccount | None = None
        if props.account_role_name:
            role = IamRole(
                self,
                "cloudwatch-role",
                name=props.account_role_name,
                assume_role_policy=policy.assume_role("apigateway.amazonaws.com"),
            )
            # The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs, inline so the grant is reviewable here.
            role_policy = IamRolePolicy(
                self,
                "cloudwatch-policy",
                name=props.account_role_name,
                role=role.id,
                policy=policy.document(
                    policy.statement(
                        "PushApiGatewayLogs",
                        [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                            "logs:PutLogEvents",
                            "logs:GetLogEvents",
                            "logs:FilterLogEvents",
                        ],
                        "*",
                    )
                ),
            )
            # Only once the role may write logs: a stage logging before that silently loses its logs.
            self.account = ApiGatewayAccount(self, "account", cloudwatch_role_arn=role.arn, depends_on=[role_policy])

    @property
    def log_group_arn(self) -> str | None:
        return self.log_group.arn if self.log_group else None
