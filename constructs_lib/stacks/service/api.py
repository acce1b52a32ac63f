"""The API: the token authorizer (API key source AUTHORIZER), access logs, the REST API and its usage plans."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from ... import construct_ids as ids
from ...api_gateway import (
    AuthorizerProps,
    KeyServiceApi,
    KeyServiceApiProps,
    MethodSettingsProps,
    UsagePlan,
    UsagePlanProps,
)
from ...authorizer import TokenAuthorizer, TokenAuthorizerProps
from ...lambda_function import LambdaFunction
from ...observability import ApiAccessLogs, ApiAccessLogsProps
from .context import Outputs, ServiceContext


@dataclass(frozen=True, kw_only=True)
class ServiceApi:
    api: KeyServiceApi
    plans: dict[str, UsagePlan]
    """Every usage plan, by settings name."""
    service_plan: UsagePlan
    """The plan the service's own API key joins (`api.usage_plan`)."""
    token_authorizer: TokenAuthorizer | None
    log_groups: tuple[CloudwatchLogGroup, ...]
    """Access logs, execution logs and the authorizer's, those that exist, in that order."""


def build(scope: Construct, ctx: ServiceContext, outputs: Outputs, backend: LambdaFunction) -> ServiceApi:
    """`POST /keys` in front of `backend`, with the usage plans of the settings."""
    token_authorizer = _token_authorizer(scope, ctx) if ctx.settings.api.api_key_source == "AUTHORIZER" else None
    access_logs = _access_logs(scope, ctx)
    api = _api(scope, ctx, backend, token_authorizer, access_logs)
    plans = _usage_plans(scope, ctx, api)
    service_plan = plans[ctx.settings.api.usage_plan]

    outputs.add("rest_api_id", api.rest_api_id, "ID of the REST API")
    outputs.add("rest_api_execution_arn", api.execution_arn, "Execution ARN of the REST API")
    outputs.add("stage_name", api.stage_name, "Stage serving the API")
    outputs.add("stage_invoke_url", api.stage_invoke_url, "Base URL of the stage")
    outputs.add("client_certificate_id", api.client_certificate_id, "Client certificate the stage presents to backends")
    outputs.add(
        "usage_plan_ids", {name: plan.usage_plan_id for name, plan in plans.items()}, "Usage plan IDs by plan name"
    )
    outputs.add("usage_plan_id", service_plan.usage_plan_id, "Usage plan the service's API key belongs to")
    if token_authorizer:
        outputs.add(
            "tokens_table_name", token_authorizer.table_name, "DynamoDB table of token hashes (python -m tools.tokens)"
        )
        outputs.add(
            "token_authorizer_function_name", token_authorizer.function_name, "Lambda authorizing bearer tokens"
        )

    log_groups = [
        *([access_logs.log_group] if access_logs and access_logs.log_group else []),
        *([api.execution_log_group] if api.execution_log_group else []),
        *([token_authorizer.log_group] if token_authorizer else []),
    ]
    return ServiceApi(
        api=api,
        plans=plans,
        service_plan=service_plan,
        token_authorizer=token_authorizer,
        log_groups=tuple(log_groups),
    )


def _token_authorizer(scope: Construct, ctx: ServiceContext) -> TokenAuthorizer:
    settings, names = ctx.settings, ctx.names
    return TokenAuthorizer(
        scope,
        ids.TOKEN_AUTHORIZER,
        TokenAuthorizerProps(
            table_name=names.tokens_table,
            function_name=names.token_authorizer,
            code=ctx.code("token_authorizer"),
            runtime=settings.function.runtime,
            hardening=ctx.hardening(settings.function.reserved_concurrency),
            kms_alias=names.tokens_kms_alias,
            environment=ctx.environment,
            deletion_protection=settings.state.deletion_protection,
        ),
    )


def _access_logs(scope: Construct, ctx: ServiceContext) -> ApiAccessLogs | None:
    """The access log group and the account's CloudWatch role, when access or execution logs need them."""
    settings, names = ctx.settings, ctx.names
    if not (settings.api.access_logs or settings.observability.execution_logging != "OFF"):
        return None
    return ApiAccessLogs(
        scope,
        ids.ACCESS_LOGS,
        ApiAccessLogsProps(
            log_group_name=names.access_log_group if settings.api.access_logs else None,
            kms_key_arn=ctx.operations_key.arn,
            account_role_name=names.apigateway_cloudwatch_role if settings.api.manage_account_cloudwatch_role else None,
        ),
    )


def _api(
    scope: Construct,
    ctx: ServiceContext,
    backend: LambdaFunction,
    token_authorizer: TokenAuthorizer | None,
    access_logs: ApiAccessLogs | None,
) -> KeyServiceApi:
    settings, names, observability = ctx.settings, ctx.names, ctx.settings.observability
    return KeyServiceApi(
        scope,
        ids.API,
        KeyServiceApiProps(
            name=names.rest_api,
            stage_name=settings.service.stage,
            lambda_invoke_arn=backend.invoke_arn,
            lambda_function_name=backend.function_name,
            allowed_source_cidrs=tuple(settings.api.allowed_source_cidrs),
            allowed_vpc_endpoint_ids=tuple(settings.api.allowed_vpc_endpoint_ids),
            client_certificate_description=f"Client certificate of {names.client_certificate}",
            access_log_group_arn=access_logs.log_group_arn if access_logs else None,
            stage_depends_on=(access_logs.account,) if access_logs and access_logs.account else (),
            authorizer=AuthorizerProps(
                invoke_arn=token_authorizer.invoke_arn,
                function_name=token_authorizer.function_name,
                ttl_seconds=settings.api.authorizer_ttl,
            )
            if token_authorizer
            else None,
            method_settings=MethodSettingsProps(
                logging_level=observability.execution_logging,
                metrics_enabled=observability.metrics,
                throttling_rate_limit=settings.api.throttle_rate_limit,
                throttling_burst_limit=settings.api.throttle_burst_limit,
            ),
            tracing=observability.tracing,
            disable_execute_api_endpoint=settings.domain.disable_execute_api_endpoint if settings.domain.name else None,
            log_kms_key_arn=ctx.operations_key.arn,
        ),
    )


def _usage_plans(scope: Construct, ctx: ServiceContext, api: KeyServiceApi) -> dict[str, UsagePlan]:
    """One plan per `[usage_plans.<name>]` (`usage-plan-<name>`), in name order."""
    return {
        name: UsagePlan(
            scope,
            ids.usage_plan(name),
            UsagePlanProps(
                name=ctx.names.usage_plan(name),
                rest_api_id=api.rest_api_id,
                stage_name=api.stage_name,
                throttle_rate_limit=plan.throttle_rate_limit,
                throttle_burst_limit=plan.throttle_burst_limit,
                quota_limit=plan.quota_limit,
                quota_period=plan.quota_period,
                quota_offset=plan.quota_offset,
                method_throttles=tuple(
                    (path, throttle.rate_limit, throttle.burst_limit)
                    for path, throttle in sorted(plan.method_throttles.items())
                ),
            ),
        )
        for name, plan in sorted(ctx.settings.usage_plans.items())
    }
