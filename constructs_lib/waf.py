"""A WAFv2 web ACL in front of the stage: known-bad traffic never reaches the API key check or the Lambda.

Resources (`WebAcl`): a regional web ACL with AWS's managed IP reputation and anonymous IP lists, common
rule set and known bad inputs (Log4j included), then a per-IP rate limit; its association with the stage; its
logging to a log group named `aws-waf-logs-...` (never expires, customer key), with the `x-api-key` and `Authorization`
headers redacted so no credential reaches the logs. Sampled requests are off: they keep headers unredacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)
from constructs import Construct

from .cloudwatch import LogGroup, LogGroupProps
from .validation import Problems, between, matches

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)
"""Evaluated in this order, before the rate limit. Known bad inputs includes the Log4j (CVE-2021-44228) rules."""
COUNTED_RULES = {"AWSManagedRulesAnonymousIpList": ("HostingProviderIPList",)}
"""Rules only counted, not enforced: the service's callers are automation, which often runs in a cloud
(a hosting provider); VPNs, proxies and Tor stay blocked."""
REDACTED_HEADERS = ("x-api-key", "authorization")


@dataclass(frozen=True, kw_only=True)
class WebAclProps:
    name: str
    stage_arn: str
    rate_limit: int
    """Requests one IP may send in 5 minutes."""
    log_group_name: str
    """Must start with `aws-waf-logs-`."""
    log_kms_key_arn: str


def _validate(props: WebAclProps) -> None:
    problems = Problems("WebAcl")
    problems.check("name", props.name, matches(r"[\w-]{1,128}", "1-128 letters, digits, '-' or '_'"))
    problems.check("stage_arn", props.stage_arn, matches(r".+", "a stage ARN"))
    problems.check("rate_limit", props.rate_limit, between(10, 2_000_000_000))
    problems.check("log_group_name", props.log_group_name, matches(r"aws-waf-logs-[\w.#/-]+", "aws-waf-logs-<name>"))
    problems.raise_if_any()


class WebAcl(Construct):
    """Exposes `web_acl` and `log_group` (the resources) and `web_acl_arn`."""

    def __init__(self, scope: Construct, id: str, props: WebAclProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        rules = [
            Wafv2WebAclRule(
                name=group,
                priority=10 * (index + 1),
                override_action=Wafv2WebAclRuleOverrideAction(none=Wafv2WebAclRuleOverrideActionNone()),
                statement={"managed_rule_group_statement": _managed_group(group)},
                visibility_config=_visibility(group),
            )
            for index, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(
            Wafv2WebAclRule(
                name="RateLimitPerIp",
                priority=10 * (len(MANAGED_RULE_GROUPS) + 1),
                action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                statement={"rate_based_statement": {"limit": props.rate_limit, "aggregate_key_type": "IP"}},
                visibility_config=_visibility("RateLimitPerIp"),
            )
        )
        self.web_acl = Wafv2WebAcl(
            self,
            "web-acl",
            name=props.name,
            description="Managed rules and a per-IP rate limit in front of the kms-key-generator stage",
            scope="REGIONAL",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            rule=rules,
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=props.name, sampled_requests_enabled=False
            ),
        )
        Wafv2WebAclAssociation(self, "association", resource_arn=props.stage_arn, web_acl_arn=self.web_acl.arn)
        self.log_group = LogGroup(
            self, "logs", LogGroupProps(name=props.log_group_name, kms_key_arn=props.log_kms_key_arn)
        ).log_group
        Wafv2WebAclLoggingConfiguration(
            self,
            "logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=[
                Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name=header)
                )
                for header in REDACTED_HEADERS
            ],
        )

    @property
    def web_acl_arn(self) -> str:
        return self.web_acl.arn


def _managed_group(name: str) -> dict[str, Any]:
    statement: dict[str, Any] = {"vendor_name": "AWS", "name": name}
    if name in COUNTED_RULES:
        statement["rule_action_override"] = [
            {"name": rule, "action_to_use": {"count": {}}} for rule in COUNTED_RULES[name]
        ]
    return statement


def _visibility(metric_name: str) -> Any:
    # Sampled requests keep every header (redaction applies to logs only): they would expose API keys.
    return Wafv2WebAclRuleVisibilityConfig(
        cloudwatch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=False
    )
