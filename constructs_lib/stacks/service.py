"""The kms-key-generator service stack, with its state in the remote-state stack's bucket or HCP Terraform."""

from __future__ import annotations

from pathlib import Path

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from .. import api_contract, policy
from ..api_gateway import (
    ApiKey,
    ApiKeyProps,
    AuthorizerProps,
    KeyServiceApi,
    KeyServiceApiProps,
    MethodSettingsProps,
    UsagePlan,
    UsagePlanProps,
)
from ..authorizer import TokenAuthorizer, TokenAuthorizerProps
from ..cdk import TerraformStack
from ..domain import CustomDomain, CustomDomainProps
from ..kms import operations_key
from ..lambda_function import LambdaCode, LambdaFunction, LambdaFunctionProps, LambdaHardening
from ..monitoring import MonitoredFunction, ServiceMonitoring, ServiceMonitoringProps
from ..naming import Names
from ..observability import ApiAccessLogs, ApiAccessLogsProps
from ..rotation import ApiKeyRotation, ApiKeyRotationProps
from ..settings import Settings
from ..ssm import SecureParameter, SecureParameterProps
from ..tenants import POLICIES_FILE, Tenant, TenantKeys, TenantKeysProps, TenantPolicy, policies_file
from ..waf import WebAcl, WebAclProps
from .adoption import adopt_service, with_original_output_names
from .base import aws_provider, outputs, state_backend, state_outputs

LAMBDA_SOURCES = Path(__file__).resolve().parents[2] / "lambda"
# Not a secret: what the SSM parameter holds until the first rotation, run by the same apply, replaces it.
PENDING_FIRST_ROTATION = "pending: the first API-key rotation writes the live key here"


class ServiceStack(TerraformStack):
    """`staging_dir` is scratch space for packaging Lambda sources (inside the synth output folder)."""

    def __init__(self, scope: Construct, id: str, settings: Settings, *, staging_dir: Path) -> None:
        super().__init__(scope, id)
        service, names = settings.service, Names(settings.service.name, settings.service.stage)
        state_backend(self, settings)
        aws_provider(self, settings)
        account_id = DataAwsCallerIdentity(self, "current").account_id
        partition = DataAwsPartition(self, "partition").partition

        ops_key = operations_key(
            Construct(self, "operations-key"),
            alias=names.ops_kms_alias,
            account_id=account_id,
            partition=partition,
            region=service.region,
        )
        observability = settings.observability

        def hardening(reserved_concurrency: int) -> LambdaHardening:
            return LambdaHardening(
                kms_key_arn=ops_key.arn,
                reserved_concurrency=reserved_concurrency,
                tracing=observability.tracing,
            )

        def code(function: str, generated_files: dict[str, str] | None = None) -> LambdaCode:
            """Sources of `lambda/<function>/` plus the shared modules, staged under this synth's output."""
            return LambdaCode(
                source_dir=LAMBDA_SOURCES / function,
                staging_dir=staging_dir / function,
                shared_dir=LAMBDA_SOURCES / "shared",
                generated_files=generated_files or {},
            )

        key_generator_environment = {
            "SERVICE_NAME": service.name,
            "CROSS_ACCOUNT_ROLE_NAME": settings.function.cross_account_role_name,
            "ALLOWED_ACCOUNTS": ",".join(settings.function.allowed_accounts),
            "ALLOWED_REGIONS": ",".join(settings.function.allowed_regions),
        }
        function = LambdaFunction(
            self,
            "key-generator",
            LambdaFunctionProps(
                function_name=names.function,
                role_name=names.execution_role,
                code=code("kms_key_generator", {POLICIES_FILE: self._tenant_policies(settings)}),
                runtime=settings.function.runtime,
                memory_size=settings.function.memory_size,
                timeout=settings.function.timeout,
                environment=key_generator_environment,
                policy_statements=self._key_factory_statements(settings, partition, account_id),
                hardening=hardening(settings.function.reserved_concurrency),
            ),
        )
        token_authorizer = None
        if settings.api.api_key_source == "AUTHORIZER":
            token_authorizer = TokenAuthorizer(
                self,
                "token-authorizer",
                TokenAuthorizerProps(
                    table_name=names.tokens_table,
                    function_name=names.token_authorizer,
                    code=code("token_authorizer"),
                    runtime=settings.function.runtime,
                    hardening=hardening(settings.function.reserved_concurrency),
                    kms_alias=names.tokens_kms_alias,
                    account_id=account_id,
                    partition=partition,
                    region=service.region,
                    deletion_protection=settings.state.deletion_protection,
                ),
            )
        execution_logging = observability.execution_logging != "OFF"
        access_logs = (
            ApiAccessLogs(
                self,
                "access-logs",
                ApiAccessLogsProps(
                    log_group_name=names.access_log_group if settings.api.access_logs else None,
                    kms_key_arn=ops_key.arn,
                    account_role_name=names.apigateway_cloudwatch_role
                    if settings.api.manage_account_cloudwatch_role
                    else None,
                ),
            )
            if settings.api.access_logs or execution_logging
            else None
        )
        api = KeyServiceApi(
            self,
            "api",
            KeyServiceApiProps(
                name=names.rest_api,
                stage_name=service.stage,
                lambda_invoke_arn=function.function.invoke_arn,
                lambda_function_name=function.function.function_name,
                allowed_source_cidrs=tuple(settings.api.allowed_source_cidrs),
                allowed_vpc_endpoint_ids=tuple(settings.api.allowed_vpc_endpoint_ids),
                client_certificate_description=f"Client certificate of {names.client_certificate}",
                access_log_group_arn=access_logs.log_group.arn if access_logs and access_logs.log_group else None,
                stage_depends_on=(access_logs.account,) if access_logs and access_logs.account else (),
                authorizer=AuthorizerProps(
                    invoke_arn=token_authorizer.function.function.invoke_arn,
                    function_name=token_authorizer.function.function.function_name,
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
                log_kms_key_arn=ops_key.arn,
            ),
        )
        plans = {
            name: UsagePlan(
                self,
                f"usage-plan-{name}",
                UsagePlanProps(
                    name=names.usage_plan(name),
                    rest_api_id=api.rest_api.id,
                    stage_name=api.stage.stage_name,
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
            ).usage_plan
            for name, plan in sorted(settings.usage_plans.items())
        }
        service_plan = plans[settings.api.usage_plan]
        rotation = settings.rotation
        api_key = None
        if not rotation.enabled:
            api_key = ApiKey(
                self,
                "service-api-key",
                ApiKeyProps(
                    name=names.api_key,
                    usage_plan_id=service_plan.id,
                    description=f"API key of {service.name} ({service.stage})",
                ),
            ).api_key
        parameter = SecureParameter(
            self,
            "api-key-parameter",
            SecureParameterProps(
                name=names.ssm_parameter,
                # With rotation on, the first rotation (run during this apply) writes the first live key.
                value=api_key.value if api_key else PENDING_FIRST_ROTATION,
                value_owned_elsewhere=rotation.enabled,
                description=f"Live API key of {service.name} ({service.stage})",
                kms_alias=names.ssm_kms_alias,
                account_id=account_id,
                partition=partition,
                region=service.region,
            ),
        )
        if settings.tenants:
            tenant_keys = TenantKeys(
                self,
                "tenants",
                TenantKeysProps(
                    key_name_prefix=service.name,
                    tenants=tuple(
                        Tenant(id=t.id, plan=t.plan, enabled=t.enabled, fixed_key=t.fixed_key, tags=t.tags)
                        for t in settings.tenants
                    ),
                    usage_plan_ids={name: plan.id for name, plan in plans.items()},
                ),
            ).api_keys
            keys = tenant_keys.fqn
            described_tenants = {
                "tenant_api_key_ids": (f"${{{{for tenant, key in {keys} : tenant => key.id}}}}", "API key ID by tenant id"),
                "tenant_api_keys": (
                    f"${{{{for tenant, key in {keys} : tenant => key.value}}}}",
                    "API key value by tenant id (sensitive)",
                ),
            }
        else:
            described_tenants = {}
        log_groups = [
            function.log_group,
            *([access_logs.log_group] if access_logs and access_logs.log_group else []),
            *([api.execution_log_group] if api.execution_log_group else []),
        ]
        if token_authorizer:
            log_groups.append(token_authorizer.function.log_group)
            described_tenants |= {
                "tokens_table_name": (token_authorizer.table.name, "DynamoDB table of token hashes (python -m tools.tokens)"),
                "token_authorizer_function_name": (
                    token_authorizer.function.function.function_name,
                    "Lambda authorizing bearer tokens",
                ),
            }
        described: dict[str, tuple[object, str]] = {}
        if api_key is not None:
            described |= {
                "api_key_id": (api_key.id, "ID of the service's API key"),
                "api_key_value": (api_key.value, "The service's API key (sensitive; also in the SSM parameter)"),
            }
        rotator = None
        if api_key is None:
            rotator = ApiKeyRotation(
                self,
                "api-key-rotation",
                ApiKeyRotationProps(
                    secret_name=names.api_key_secret,
                    key_name_prefix=names.api_key,
                    usage_plan_ids=(service_plan.id,),
                    rotation_days=rotation.days,
                    grace_hours=rotation.grace_hours,
                    ssm_parameter_name=parameter.parameter.name,
                    ssm_parameter_arn=parameter.parameter.arn,
                    ssm_kms_key_arn=parameter.kms_key.arn,
                    function_name=names.rotation_function,
                    role_name=names.rotation_function,
                    code=code("api_key_rotation"),
                    runtime=settings.function.runtime,
                    hardening=hardening(settings.function.rotation_concurrency),
                    kms_alias=names.secret_kms_alias,
                    project=settings.tags.get("Project", service.name),
                    cost_category=settings.tags.get("CostCategory", "unassigned"),
                    account_id=account_id,
                    partition=partition,
                    region=service.region,
                ),
            )
            log_groups.append(rotator.function.log_group)
            described |= {
                "api_key_secret_arn": (rotator.secret.arn, "Secrets Manager secret holding the current API key"),
                "api_key_secret_name": (rotator.secret.name, "Name of the API key secret"),
                "rotation_function_name": (rotator.function.function.function_name, "API-key rotation Lambda"),
                "rotation_function_arn": (rotator.function.function.arn, "ARN of the API-key rotation Lambda"),
                "rotation_days": (rotation.days, "Days between API-key rotations"),
            }
        # Who the operator is (the handler's tenant `operator`) is known only once its key or secret exists,
        # which is after the function: the environment is completed here.
        operator = (
            {"OPERATOR_API_KEY_ID": api_key.id} if api_key is not None else {"OPERATOR_SECRET_ARN": rotator.secret.arn}
        )
        function.function.put_environment(
            variables={**key_generator_environment, "KEY_FACTORY_ROLE_ARN": function.role.arn, **operator}
        )
        operations, operations_log_groups = self._operations(
            settings, names, api, function, token_authorizer, rotator, ops_key
        )
        log_groups.extend(operations_log_groups)
        described |= operations
        adopt_service(
            settings, api=api, usage_plan=service_plan, api_key=api_key, function=function,
            log_groups=log_groups, parameter=parameter.parameter,
        )

        outputs(
            self,
            with_original_output_names({
                "account_id": (account_id, "AWS account the service is deployed in"),
                "region": (service.region, "AWS region of the service"),
                "rest_api_id": (api.rest_api.id, "ID of the REST API"),
                "rest_api_execution_arn": (api.rest_api.execution_arn, "Execution ARN of the REST API"),
                "stage_name": (api.stage.stage_name, "Stage serving the API"),
                "stage_invoke_url": (api.stage.invoke_url, "Base URL of the stage"),
                "key_endpoint_url": (
                    # With execute-api disabled, the custom domain is the only way in.
                    described["custom_domain_key_endpoint_url"][0]
                    if settings.domain.name and settings.domain.disable_execute_api_endpoint
                    else api.invoke_url,
                    "URL to POST key requests to (send the API key in x-api-key)",
                ),
                "client_certificate_id": (api.client_certificate.id, "Client certificate the stage presents to backends"),
                "usage_plan_ids": ({name: plan.id for name, plan in plans.items()}, "Usage plan IDs by plan name"),
                "usage_plan_id": (service_plan.id, "Usage plan the service's API key belongs to"),
                "ssm_parameter_name": (parameter.parameter.name, "SSM SecureString holding the live API key"),
                "ssm_parameter_arn": (parameter.parameter.arn, "ARN of the SSM parameter"),
                "ssm_kms_key_arn": (parameter.kms_key.arn, "KMS key encrypting the SSM parameter"),
                "lambda_function_name": (function.function.function_name, "Name of the key-generator Lambda"),
                "lambda_function_arn": (function.function.arn, "ARN of the key-generator Lambda"),
                "execution_role_name": (function.role.name, "Name of the Lambda execution role"),
                "execution_role_arn": (function.role.arn, "ARN of the Lambda execution role"),
                "log_group_names": ([g.name for g in log_groups], "CloudWatch log groups of the service (never expire)"),
                "log_group_arns": ([g.arn for g in log_groups], "ARNs of the service's log groups"),
                **state_outputs(settings),
                "operations_kms_key_arn": (ops_key.arn, "KMS key encrypting logs, the alarm topic and Lambda environments"),
                **described,
                **described_tenants,
            }),
            sensitive=frozenset({"api_key_value", "tenant_api_keys"}),
        )

    def _operations(
        self,
        settings: Settings,
        names: Names,
        api: KeyServiceApi,
        function: LambdaFunction,
        token_authorizer: TokenAuthorizer | None,
        rotator: ApiKeyRotation | None,
        ops_key: KmsKey,
    ) -> tuple[dict[str, tuple[object, str]], list[CloudwatchLogGroup]]:
        """WAF, custom domain, alarms and dashboard; returns their described outputs and the log groups
        they add."""
        service, observability = settings.service, settings.observability
        described: dict[str, tuple[object, str]] = {}
        log_groups: list[CloudwatchLogGroup] = []
        if settings.waf.enabled:
            acl = WebAcl(
                self,
                "waf",
                WebAclProps(
                    name=names.web_acl,
                    stage_arn=api.stage.arn,
                    rate_limit=settings.waf.rate_limit,
                    log_group_name=names.waf_log_group,
                    log_kms_key_arn=ops_key.arn,
                ),
            )
            log_groups.append(acl.log_group)
            described["web_acl_arn"] = (acl.web_acl.arn, "WAFv2 web ACL protecting the stage")
        if settings.domain.name:
            domain = CustomDomain(
                self,
                "custom-domain",
                CustomDomainProps(
                    domain_name=settings.domain.name,
                    rest_api_id=api.rest_api.id,
                    stage_name=api.stage.stage_name,
                    hosted_zone_id=settings.domain.hosted_zone_id,
                    base_path=settings.domain.base_path,
                ),
            )
            described |= {
                "custom_domain_name": (domain.domain.domain_name, "Custom domain serving the API (TLS 1.2)"),
                "custom_domain_target": (
                    domain.domain.regional_domain_name,
                    "Regional hostname the custom domain's DNS record must alias or CNAME to",
                ),
                "custom_domain_target_zone_id": (
                    domain.domain.regional_zone_id,
                    "Route 53 zone id of the target, for an alias record",
                ),
                "custom_domain_key_endpoint_url": (
                    f"{domain.url}/{api_contract.RESOURCE_PATH}",
                    "URL to POST key requests to through the custom domain",
                ),
                "certificate_arn": (domain.certificate.arn, "ACM certificate of the custom domain"),
            }
        functions = [MonitoredFunction(label="key-generator", function_name=function.function.function_name)]
        if rotator:
            functions.append(MonitoredFunction(label="rotation", function_name=rotator.function.function.function_name))
        if token_authorizer:
            functions.append(
                MonitoredFunction(label="authorizer", function_name=token_authorizer.function.function.function_name)
            )
        if observability.alarms or observability.dashboard:
            monitoring = ServiceMonitoring(
                self,
                "monitoring",
                ServiceMonitoringProps(
                    region=service.region,
                    api_name=api.rest_api.name,
                    stage_name=api.stage.stage_name,
                    key_generator_log_group=function.log_group.name,
                    metric_namespace=names.metric_namespace,
                    functions=tuple(functions),
                    kms_key_arn=ops_key.arn,
                    alarm_prefix=names.alarm_prefix,
                    topic_name=names.alarm_topic,
                    alarm_emails=tuple(observability.alarm_emails),
                    anomaly_band_width=observability.anomaly_band_width,
                    client_error_threshold=observability.client_error_threshold,
                    alarms=observability.alarms,
                    dashboard_name=names.dashboard if observability.dashboard else None,
                ),
            )
            if monitoring.topic:
                described |= {
                    "alarm_topic_arn": (monitoring.topic.arn, "SNS topic every alarm notifies (subscribe to it)"),
                    "alarm_names": (
                        [alarm.alarm_name for alarm in monitoring.alarms.values()],
                        "CloudWatch alarms on the API and the functions",
                    ),
                }
            if monitoring.dashboard:
                described["dashboard_name"] = (monitoring.dashboard.dashboard_name, "CloudWatch dashboard of the service")
        return described, log_groups

    @staticmethod
    def _tenant_policies(settings: Settings) -> str:
        """`tenants.json` for the key generator: each tenant's accounts, regions (the service's when it names
        none) and alias prefix. `{}` without tenants, so the handler always finds the file."""
        return policies_file(
            TenantPolicy(
                id=tenant.id,
                allowed_accounts=tuple(tenant.allowed_accounts),
                allowed_regions=tuple(tenant.allowed_regions or settings.function.allowed_regions),
                alias_prefix=tenant.alias_prefix,
            )
            for tenant in settings.tenants
        )

    @staticmethod
    def _key_factory_statements(settings: Settings, partition: str, account_id: str) -> tuple[dict, ...]:
        """The key factory's identity policy: create keys, alias them, read API key tags, assume the allowed
        accounts' roles; nothing on keys it did not create.

        Rights on a key (tag, rotation, alias, deletion, policy) come from the key policy the handler gives at
        CreateKey (`handler.key_policy`), which names this role: so they reach only keys it created. Tags are
        no ownership proof here: whoever may tag could tag any key as its own. CreateKey is refused for a
        lockout-safety bypass, a multi-Region key or external key material (KMS fills these condition keys
        with the parameters' defaults when a request omits them). CreateAlias also needs the key side, which
        only those key policies grant. GetTags, unlike GetApiKey, returns no key value.
        """
        own = f"arn:{partition}:kms:*:{account_id}"
        statements = [
            policy.statement(
                "CreateSingleRegionKmsKeys",
                ["kms:CreateKey"],
                "*",
                condition={
                    "Bool": {"kms:BypassPolicyLockoutSafetyCheck": "false", "kms:MultiRegion": "false"},
                    "StringEquals": {"kms:KeyOrigin": "AWS_KMS"},
                },
            ),
            policy.statement("CreateAliases", ["kms:CreateAlias"], f"{own}:alias/*"),
            policy.statement("DescribeKeys", ["kms:DescribeKey"], f"{own}:key/*"),
            policy.statement(
                "ReadApiKeyTags", ["apigateway:GET"], f"arn:{partition}:apigateway:{settings.service.region}::/tags/*"
            ),
        ]
        accounts = sorted(
            set(settings.function.allowed_accounts).union(*(tenant.allowed_accounts for tenant in settings.tenants))
        )
        if accounts:
            role = settings.function.cross_account_role_name
            statements += [
                policy.statement(
                    "AssumeAllowedAccountsRole",
                    ["sts:AssumeRole"],
                    [f"arn:{partition}:iam::{account}:role/{role}" for account in accounts],
                ),
                # The own account is known only at apply time; its keys are made without any role.
                policy.statement(
                    "NeverAssumeOwnAccountsRole",
                    ["sts:AssumeRole"],
                    f"arn:{partition}:iam::{account_id}:role/{role}",
                    effect="Deny",
                ),
            ]
        return tuple(statements)
