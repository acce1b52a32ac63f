"""What every stack shares: the AWS provider with default tags, and described outputs."""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from ..cdk import TerraformOutput
from ..settings import Settings


def aws_provider(scope: Construct, settings: Settings) -> AwsProvider:
    """The stack's AWS provider; `default_tags` tag every resource without repeating tags per construct."""
    tags = {
        "Project": settings.service.name,
        "Environment": settings.service.environment,
        "ManagedBy": "cdktf",
        **settings.tags,
    }
    return AwsProvider(
        scope, "aws", region=settings.service.region, default_tags=[AwsProviderDefaultTags(tags=dict(sorted(tags.items())))]
    )


def outputs(scope: Construct, described: dict[str, tuple[Any, str]], *, sensitive: frozenset[str] = frozenset()) -> None:
    """Declare `name -> (value, description)` outputs; names in `sensitive` are redacted by Terraform."""
    for name, (value, description) in described.items():
        TerraformOutput(scope, name, value=value, description=description, sensitive=name in sensitive or None)
