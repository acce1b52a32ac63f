"""API keys: the service's own (a static key, or one the rotation Lambda owns), the SSM parameter holding it,
and the tenants' keys."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from ... import construct_ids as ids
from ...api_gateway import ApiKey, ApiKeyProps
from ...rotation import ApiKeyRotation, ApiKeyRotationProps
from ...ssm import SecureParameter, SecureParameterProps
from ...tenants import Tenant, TenantKeys, TenantKeysProps
from .api import ServiceApi
from .context import Outputs, ServiceContext

# Not a secret: what the SSM parameter holds until the first rotation, run by the same apply, replaces it.
PENDING_FIRST_ROTATION = "pending: the first API-key rotation writes the live key here"


@dataclass(frozen=True, kw_only=True)
class ServiceKeys:
    api_key: ApiKey | None
    """The static key (rotation off), else None: the rotation Lambda owns every key."""
    parameter: SecureParameter
    rotation: ApiKeyRotation | None
    tenant_keys: TenantKeys | None
    log_groups: tuple[CloudwatchLogGroup, ...]
    """The rotation function's, when rotating."""

    @property
    def operator_environment(self) -> dict[str, str]:
        """How the key generator recognises the operator's key: its id, or the secret holding the current one."""
        if self.api_key is not None:
            return {"OPERATOR_API_KEY_ID": self.api_key.key_id}
        assert self.rotation is not None  # no static key means rotation
        return {"OPERATOR_SECRET_ARN": self.rotation.secret_arn}


def build(scope: Construct, ctx: ServiceContext, outputs: Outputs, api: ServiceApi) -> ServiceKeys:
    rotating = ctx.settings.rotation.enabled
    api_key = None if rotating else _static_key(scope, ctx, outputs, api)
    parameter = _parameter(scope, ctx, outputs, api_key)
    tenant_keys = _tenant_keys(scope, ctx, outputs, api) if ctx.settings.tenants else None
    rotation = _rotation(scope, ctx, outputs, api, parameter) if rotating else None
    return ServiceKeys(
        api_key=api_key,
        parameter=parameter,
        rotation=rotation,
        tenant_keys=tenant_keys,
        log_groups=(rotation.log_group,) if rotation else (),
    )


def _static_key(scope: Construct, ctx: ServiceContext, outputs: Outputs, api: ServiceApi) -> ApiKey:
    service = ctx.settings.service
    api_key = ApiKey(
        scope,
        ids.SERVICE_API_KEY,
        ApiKeyProps(name=ctx.names.api_key, description=f"API key of {service.name} ({service.stage})"),
    )
    api.service_plan.add_api_key(api_key)
    outputs.add("api_key_id", api_key.key_id, "ID of the service's API key")
    outputs.add(
        "api_key_value", api_key.value, "The service's API key (sensitive; also in the SSM parameter)", sensitive=True
    )
    return api_key


def _parameter(scope: Construct, ctx: ServiceContext, outputs: Outputs, api_key: ApiKey | None) -> SecureParameter:
    service = ctx.settings.service
    parameter = SecureParameter(
        scope,
        ids.API_KEY_PARAMETER,
        SecureParameterProps(
            name=ctx.names.ssm_parameter,
            # With rotation on, the first rotation (run during this apply) writes the first live key.
            value=api_key.value if api_key else PENDING_FIRST_ROTATION,
            value_owned_elsewhere=ctx.settings.rotation.enabled,
            description=f"Live API key of {service.name} ({service.stage})",
            kms_alias=ctx.names.ssm_kms_alias,
            environment=ctx.environment,
        ),
    )
    outputs.add("ssm_parameter_name", parameter.name, "SSM SecureString holding the live API key")
    outputs.add("ssm_parameter_arn", parameter.arn, "ARN of the SSM parameter")
    outputs.add("ssm_kms_key_arn", parameter.kms_key_arn, "KMS key encrypting the SSM parameter")
    return parameter


def _tenant_keys(scope: Construct, ctx: ServiceContext, outputs: Outputs, api: ServiceApi) -> TenantKeys:
    tenant_keys = TenantKeys(
        scope,
        ids.TENANTS,
        TenantKeysProps(
            key_name_prefix=ctx.settings.service.name,
            tenants=tuple(
                Tenant(id=t.id, plan=t.plan, enabled=t.enabled, fixed_key=t.fixed_key, tags=t.tags)
                for t in ctx.settings.tenants
            ),
            usage_plan_ids={name: plan.usage_plan_id for name, plan in api.plans.items()},
        ),
    )
    outputs.add("tenant_api_key_ids", tenant_keys.key_ids_by_tenant, "API key ID by tenant id")
    outputs.add(
        "tenant_api_keys", tenant_keys.key_values_by_tenant, "API key value by tenant id (sensitive)", sensitive=True
    )
    return tenant_keys


def _rotation(
    scope: Construct, ctx: ServiceContext, outputs: Outputs, api: ServiceApi, parameter: SecureParameter
) -> ApiKeyRotation:
    settings, names, rotation = ctx.settings, ctx.names, ctx.settings.rotation
    rotator = ApiKeyRotation(
        scope,
        ids.API_KEY_ROTATION,
        ApiKeyRotationProps(
            secret_name=names.api_key_secret,
            key_name_prefix=names.api_key,
            usage_plan_ids=(api.service_plan.usage_plan_id,),
            rotation_days=rotation.days,
            grace_hours=rotation.grace_hours,
            parameter=parameter,
            function_name=names.rotation_function,
            role_name=names.rotation_function,
            code=ctx.code("api_key_rotation"),
            runtime=settings.function.runtime,
            hardening=ctx.hardening(settings.function.rotation_concurrency),
            kms_alias=names.secret_kms_alias,
            project=settings.tags.get("Project", settings.service.name),
            cost_category=settings.tags.get("CostCategory", "unassigned"),
            environment=ctx.environment,
        ),
    )
    outputs.add("api_key_secret_arn", rotator.secret_arn, "Secrets Manager secret holding the current API key")
    outputs.add("api_key_secret_name", rotator.secret_name, "Name of the API key secret")
    outputs.add("rotation_function_name", rotator.function_name, "API-key rotation Lambda")
    outputs.add("rotation_function_arn", rotator.function_arn, "ARN of the API-key rotation Lambda")
    outputs.add("rotation_days", rotation.days, "Days between API-key rotations")
    return rotator
