"""What every stack shares: the AWS provider with default tags, the state backend, described outputs."""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from ..cdk import CloudBackend, NamedCloudWorkspace, S3Backend, TerraformOutput, TerraformStack
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
        scope,
        "aws",
        region=settings.service.region,
        default_tags=[AwsProviderDefaultTags(tags=dict(sorted(tags.items())))],
    )


def outputs(
    scope: Construct, described: dict[str, tuple[Any, str]], *, sensitive: frozenset[str] = frozenset()
) -> None:
    """Declare `name -> (value, description)` outputs; names in `sensitive` are redacted by Terraform."""
    for name, (value, description) in described.items():
        TerraformOutput(scope, name, value=value, description=description, sensitive=name in sensitive or None)


def state_backend(stack: TerraformStack, settings: Settings) -> S3Backend | CloudBackend:
    """Keep `stack`'s state where `state.backend` says: the HCP Terraform workspace, or (default) the remote-state
    stack's bucket, encrypted under the state key.

    `encrypt = true` alone makes Terraform ask S3 for `AES256`, which overrides the bucket's SSE-KMS default, so
    the state (holding every API key value) would sit under S3's key; with `kms_key_id` each upload asks for
    SSE-KMS under the state key, the only uploads the bucket policy accepts. The key is named by its alias unless
    `state.kms_key_id` says otherwise: a backend block takes no references, and the alias, unlike the key's ARN,
    is known before the remote-state stack exists.

    HCP Terraform keeps, locks, encrypts and versions the state itself, so the cloud block names only the
    organization and workspace; the hostname, a project and the token come from Terraform's own `TF_CLOUD_*` and
    `TF_TOKEN_*` environment variables, never from settings or the JSON.
    """
    if settings.state.backend == "hcp":
        return CloudBackend(
            stack,
            organization=settings.state.hcp_organization,
            workspaces=NamedCloudWorkspace(settings.state.hcp_workspace),
        )
    backend = S3Backend(
        stack,
        bucket=settings.state.bucket,
        key=settings.state.key,
        region=settings.service.region,
        dynamodb_table=settings.state.lock_table,
        encrypt=True,
        kms_key_id=settings.state.backend_kms_key_id(settings.service.name),
    )
    if settings.state.use_lockfile:
        # cdktf 0.21 has no typed field for S3-native locking (Terraform >= 1.10).
        stack.add_override("terraform.backend.s3.use_lockfile", True)
    return backend


def state_outputs(settings: Settings) -> dict[str, tuple[Any, str]]:
    """Where the stack's state lives, as described outputs: the bucket and lock table, or the HCP workspace."""
    state = settings.state
    if state.backend == "hcp":
        workspace = f"{state.hcp_organization}/{state.hcp_workspace}"
        return {"state_workspace": (workspace, "HCP Terraform workspace holding this stack's state (org/workspace)")}
    return {
        "state_bucket": (state.bucket, "S3 bucket holding this stack's state"),
        "state_lock_table": (state.lock_table, "DynamoDB table locking this stack's state"),
    }
