"""The edge: the WAF in front of the stage, the custom domain, and the URL callers use."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from ... import api_contract
from ... import construct_ids as ids
from ...api_gateway import KeyServiceApi
from ...domain import CustomDomain, CustomDomainProps
from ...waf import WebAcl, WebAclProps
from .context import Outputs, ServiceContext


@dataclass(frozen=True, kw_only=True)
class ServiceEdge:
    web_acl: WebAcl | None
    domain: CustomDomain | None
    log_groups: tuple[CloudwatchLogGroup, ...]
    """The WAF's, when there is one."""


def build(scope: Construct, ctx: ServiceContext, outputs: Outputs, api: KeyServiceApi) -> ServiceEdge:
    settings = ctx.settings
    web_acl = _web_acl(scope, ctx, outputs, api) if settings.waf.enabled else None
    domain = _domain(scope, ctx, outputs, api) if settings.domain.name else None
    outputs.add(
        "key_endpoint_url",
        # With execute-api disabled, the custom domain is the only way in.
        outputs.value("custom_domain_key_endpoint_url")
        if domain and settings.domain.disable_execute_api_endpoint
        else api.invoke_url,
        "URL to POST key requests to (send the API key in x-api-key)",
    )
    return ServiceEdge(web_acl=web_acl, domain=domain, log_groups=(web_acl.log_group,) if web_acl else ())


def _web_acl(scope: Construct, ctx: ServiceContext, outputs: Outputs, api: KeyServiceApi) -> WebAcl:
    acl = WebAcl(
        scope,
        ids.WAF,
        WebAclProps(
            name=ctx.names.web_acl,
            stage_arn=api.stage_arn,
            rate_limit=ctx.settings.waf.rate_limit,
            log_group_name=ctx.names.waf_log_group,
            log_kms_key_arn=ctx.operations_key.arn,
        ),
    )
    outputs.add("web_acl_arn", acl.web_acl_arn, "WAFv2 web ACL protecting the stage")
    return acl


def _domain(scope: Construct, ctx: ServiceContext, outputs: Outputs, api: KeyServiceApi) -> CustomDomain:
    settings = ctx.settings.domain
    domain = CustomDomain(
        scope,
        ids.CUSTOM_DOMAIN,
        CustomDomainProps(
            domain_name=settings.name,
            rest_api_id=api.rest_api_id,
            stage_name=api.stage_name,
            hosted_zone_id=settings.hosted_zone_id,
            base_path=settings.base_path,
        ),
    )
    outputs.add("custom_domain_name", domain.domain_name, "Custom domain serving the API (TLS 1.2)")
    outputs.add(
        "custom_domain_target",
        domain.regional_domain_name,
        "Regional hostname the custom domain's DNS record must alias or CNAME to",
    )
    outputs.add(
        "custom_domain_target_zone_id", domain.regional_zone_id, "Route 53 zone id of the target, for an alias record"
    )
    outputs.add(
        "custom_domain_key_endpoint_url",
        f"{domain.url}/{api_contract.RESOURCE_PATH}",
        "URL to POST key requests to through the custom domain",
    )
    outputs.add("certificate_arn", domain.certificate_arn, "ACM certificate of the custom domain")
    return domain
