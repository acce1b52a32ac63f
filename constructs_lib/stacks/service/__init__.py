"""The kms-key-generator service stack, with its state in the remote-state stack's bucket or HCP Terraform.

The stack is a list of per-concern builders over one `ServiceContext` and one `Outputs` collector:

- `context`: the context (settings, names, account/partition/region, operations key, code and hardening
  helpers) and the outputs collector;
- `compute`: the key-generator Lambda and its rights;
- `api`: the token authorizer, access logs, the REST API and its usage plans;
- `keys`: the service's API key (static or rotated), its SSM parameter, the tenants' keys;
- `edge`: WAF and custom domain;
- `operations`: log groups, alarms and dashboard.

Every builder adds its constructs to the stack itself, under the ids they always had: ids are part of the
Terraform addresses.
"""

from __future__ import annotations

from pathlib import Path

from constructs import Construct

from ...cdk import TerraformStack
from ...settings import Settings
from ..adoption import adopt_service
from ..base import aws_provider, state_backend
from . import api, compute, edge, keys, operations
from .context import LAMBDA_SOURCES, Outputs, ServiceContext
from .keys import PENDING_FIRST_ROTATION

__all__ = ["LAMBDA_SOURCES", "PENDING_FIRST_ROTATION", "ServiceContext", "ServiceStack"]


class ServiceStack(TerraformStack):
    """`staging_dir` is scratch space for packaging Lambda sources (inside the synth output folder)."""

    def __init__(self, scope: Construct, id: str, settings: Settings, *, staging_dir: Path) -> None:
        super().__init__(scope, id)
        state_backend(self, settings)
        aws_provider(self, settings)
        ctx = ServiceContext.create(self, settings, staging_dir=staging_dir)
        outputs = Outputs()

        key_generator = compute.key_generator(self, ctx, outputs)
        service_api = api.build(self, ctx, outputs, key_generator)
        service_keys = keys.build(self, ctx, outputs, service_api)
        compute.name_operator(key_generator, service_keys.operator_environment)
        service_edge = edge.build(self, ctx, outputs, service_api.api)
        log_groups = [
            key_generator.log_group,
            *service_api.log_groups,
            *service_keys.log_groups,
            *service_edge.log_groups,
        ]
        operations.build(
            self,
            ctx,
            outputs,
            api=service_api.api,
            key_generator=key_generator,
            rotation=service_keys.rotation,
            token_authorizer=service_api.token_authorizer,
            log_groups=log_groups,
        )
        adopt_service(
            settings,
            api=service_api.api,
            usage_plan=service_api.service_plan,
            api_key=service_keys.api_key,
            function=key_generator,
            log_groups=log_groups,
            parameter=service_keys.parameter,
        )
        outputs.declare(self)
