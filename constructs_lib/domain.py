"""A custom domain for the API: callers use a stable HTTPS name under TLS 1.2 instead of execute-api.

Resources (`CustomDomain`): an ACM certificate (DNS validation) and its validation; with a hosted zone, the
validation records and an alias record to the regional endpoint; the regional API Gateway domain name
(`TLS_1_2`) and the base path mapping to the stage. Without a hosted zone the apply waits for the
certificate until someone creates its validation CNAME (ACM shows it), as the README describes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate
from cdktf_cdktf_provider_aws.acm_certificate_validation import AcmCertificateValidation
from cdktf_cdktf_provider_aws.api_gateway_base_path_mapping import ApiGatewayBasePathMapping
from cdktf_cdktf_provider_aws.api_gateway_domain_name import (
    ApiGatewayDomainName,
    ApiGatewayDomainNameEndpointConfiguration,
)
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from constructs import Construct

from .cdk import TerraformIterator, TerraformResourceLifecycle, Token
from .rules import BASE_PATH_PATTERN, DNS_NAME, ZONE_ID_PATTERN
from .validation import Problems, matches, non_empty


@dataclass(frozen=True, kw_only=True)
class CustomDomainProps:
    domain_name: str
    rest_api_id: str
    stage_name: str
    hosted_zone_id: str = ""
    """Route 53 zone of `domain_name`. Default: none (validate the certificate by hand)."""
    base_path: str = ""
    """Default: the stage at the domain's root."""


def _validate(props: CustomDomainProps) -> None:
    problems = Problems("CustomDomain")
    problems.check("domain_name", props.domain_name, DNS_NAME)
    problems.check("rest_api_id", props.rest_api_id, non_empty)
    problems.check("stage_name", props.stage_name, non_empty)
    if props.hosted_zone_id:
        problems.check("hosted_zone_id", props.hosted_zone_id, matches(ZONE_ID_PATTERN, "a Route 53 zone id"))
    if props.base_path:
        problems.check("base_path", props.base_path, matches(BASE_PATH_PATTERN, "a single path segment"))
    problems.raise_if_any()


class CustomDomain(Construct):
    """Exposes `certificate` and `domain` (the resources), `url` (the base URL callers use), and the values
    `domain_name`, `regional_domain_name` and `regional_zone_id` (the DNS target) and `certificate_arn`."""

    def __init__(self, scope: Construct, id: str, props: CustomDomainProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        self.certificate = AcmCertificate(
            self,
            "certificate",
            domain_name=props.domain_name,
            validation_method="DNS",
            # The domain name keeps using the old certificate until the new one is issued.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        validation_fqdns = None
        if props.hosted_zone_id:
            options = TerraformIterator.from_complex_list(self.certificate.domain_validation_options, "domain_name")
            records = Route53Record(
                self,
                "validation-record",
                for_each=options,
                zone_id=props.hosted_zone_id,
                name=options.get_string("resource_record_name"),
                type=options.get_string("resource_record_type"),
                records=[options.get_string("resource_record_value")],
                ttl=300,
                allow_overwrite=True,
            )
            # Hand-written: `TerraformIterator.from_resources(records).for_expression_for_list("val.fqdn")` renders
            # `[ for key, val in ...: val.fqdn]`, other bytes than this attribute has always had.
            validation_fqdns = Token.as_list(f"${{[for record in {records.fqn} : record.fqdn]}}")
        validation = AcmCertificateValidation(
            self,
            "certificate-validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=validation_fqdns,
        )
        self.domain = ApiGatewayDomainName(
            self,
            "domain-name",
            domain_name=props.domain_name,
            regional_certificate_arn=validation.certificate_arn,
            endpoint_configuration=ApiGatewayDomainNameEndpointConfiguration(types=["REGIONAL"]),
            security_policy="TLS_1_2",
        )
        ApiGatewayBasePathMapping(
            self,
            "base-path-mapping",
            api_id=props.rest_api_id,
            stage_name=props.stage_name,
            domain_name=self.domain.domain_name,
            base_path=props.base_path or None,
        )
        if props.hosted_zone_id:
            Route53Record(
                self,
                "alias-record",
                zone_id=props.hosted_zone_id,
                name=self.domain.domain_name,
                type="A",
                alias=Route53RecordAlias(
                    name=self.domain.regional_domain_name,
                    zone_id=self.domain.regional_zone_id,
                    evaluate_target_health=False,
                ),
            )
        self.url = f"https://{props.domain_name}" + (f"/{props.base_path}" if props.base_path else "")

    @property
    def domain_name(self) -> str:
        return self.domain.domain_name

    @property
    def regional_domain_name(self) -> str:
        """The hostname the domain's DNS record must alias or CNAME to."""
        return self.domain.regional_domain_name

    @property
    def regional_zone_id(self) -> str:
        """The Route 53 zone of `regional_domain_name`, for an alias record."""
        return self.domain.regional_zone_id

    @property
    def certificate_arn(self) -> str:
        return self.certificate.arn
