"""The public REST API: `POST /keys` with an API key, a Lambda integration, a stage and usage plans.

Resources (`KeyServiceApi`): regional REST API, or a private one when VPC endpoints are given (API key
source HEADER, i.e. `x-api-key`), resource policy (allowed source CIDRs / VPC endpoints), `/keys` resource,
request model + validator, `POST` method (API key required), non-proxy Lambda integration with the
injection-safe mapping template, method and integration responses (201/400/403/409/500), a deployment that
is replaced whenever the API model changes, a client certificate, the stage using it (defect 6) with optional
X-Ray tracing, stage-wide method settings (execution logging into a log group created first, metrics, default
throttle; data tracing always off), and the Lambda invoke permission scoped to this method. Each is one step
of `KeyServiceApi.__init__`, in that order. `UsagePlan` throttles and meters keys on the stage, and
`UsagePlan.add_api_key` attaches an `ApiKey` to it (defect 1).
The wire contract itself (template, model, status mapping) lives in `api_contract`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.api_gateway_api_key import ApiGatewayApiKey
from cdktf_cdktf_provider_aws.api_gateway_authorizer import ApiGatewayAuthorizer
from cdktf_cdktf_provider_aws.api_gateway_client_certificate import ApiGatewayClientCertificate
from cdktf_cdktf_provider_aws.api_gateway_deployment import ApiGatewayDeployment
from cdktf_cdktf_provider_aws.api_gateway_integration import ApiGatewayIntegration
from cdktf_cdktf_provider_aws.api_gateway_integration_response import ApiGatewayIntegrationResponse
from cdktf_cdktf_provider_aws.api_gateway_method import ApiGatewayMethod
from cdktf_cdktf_provider_aws.api_gateway_method_response import ApiGatewayMethodResponse
from cdktf_cdktf_provider_aws.api_gateway_method_settings import (
    ApiGatewayMethodSettings,
    ApiGatewayMethodSettingsSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_model import ApiGatewayModel
from cdktf_cdktf_provider_aws.api_gateway_request_validator import ApiGatewayRequestValidator
from cdktf_cdktf_provider_aws.api_gateway_resource import ApiGatewayResource
from cdktf_cdktf_provider_aws.api_gateway_rest_api import (
    ApiGatewayRestApi,
    ApiGatewayRestApiEndpointConfiguration,
)
from cdktf_cdktf_provider_aws.api_gateway_rest_api_policy import ApiGatewayRestApiPolicy
from cdktf_cdktf_provider_aws.api_gateway_stage import ApiGatewayStage, ApiGatewayStageAccessLogSettings
from cdktf_cdktf_provider_aws.api_gateway_usage_plan import (
    ApiGatewayUsagePlan,
    ApiGatewayUsagePlanApiStages,
    ApiGatewayUsagePlanApiStagesThrottle,
    ApiGatewayUsagePlanQuotaSettings,
    ApiGatewayUsagePlanThrottleSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_usage_plan_key import ApiGatewayUsagePlanKey
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from constructs import Construct

from . import api_contract, policy
from .cdk import Fn, ITerraformDependable, TerraformResourceLifecycle
from .cloudwatch import LogGroup, LogGroupProps
from .observability import ACCESS_LOG_FORMAT
from .rules import METHOD_PATH, STAGE_NAME, VPC_ENDPOINT_ID
from .validation import Problems, between, cidr, matches, non_empty, non_negative, one_of, positive

JSON = "application/json"


@dataclass(frozen=True, kw_only=True)
class KeyServiceApiProps:
    name: str
    stage_name: str
    lambda_invoke_arn: str
    lambda_function_name: str
    allowed_source_cidrs: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    """Source addresses the resource policy lets in. Default: anywhere (the API key still applies)."""
    allowed_vpc_endpoint_ids: tuple[str, ...] = ()
    """When non-empty, the API is PRIVATE, attached to these interface VPC endpoints, and its resource policy lets
    in requests through them only. Default: a REGIONAL API, no VPC restriction."""
    client_certificate_description: str = ""
    access_log_group_arn: str | None = None
    """Log group for one JSON line per request (`observability.ACCESS_LOG_FORMAT`). Default: no access logs."""
    stage_depends_on: tuple[ITerraformDependable, ...] = ()
    """Resources the stage needs first (the account's CloudWatch role, for access logs)."""
    authorizer: AuthorizerProps | None = None
    """Token authorizer supplying the caller's API key (API key source AUTHORIZER). Default: none, callers
    send their key in `x-api-key` (API key source HEADER)."""
    method_settings: MethodSettingsProps | None = None
    """Stage-wide execution logging, metrics and default throttle. Default: API Gateway's (none)."""
    tracing: bool = False
    """X-Ray tracing on the stage."""
    disable_execute_api_endpoint: bool | None = None
    """True: only a custom domain serves the API. Default: not managed (AWS's default, enabled)."""
    log_kms_key_arn: str | None = None
    """Encrypts the execution log group. Default: AWS-owned encryption."""


@dataclass(frozen=True, kw_only=True)
class MethodSettingsProps:
    logging_level: str
    """INFO, ERROR or OFF."""
    metrics_enabled: bool
    throttling_rate_limit: float
    throttling_burst_limit: int


@dataclass(frozen=True, kw_only=True)
class AuthorizerProps:
    invoke_arn: str
    function_name: str
    ttl_seconds: int


def _validate_api(props: KeyServiceApiProps) -> None:
    problems = Problems("KeyServiceApi")
    problems.check("name", props.name, matches(r".{1,1024}", "1-1024 characters"))
    problems.check("stage_name", props.stage_name, STAGE_NAME)
    problems.check("lambda_invoke_arn", props.lambda_invoke_arn, non_empty)
    problems.check("lambda_function_name", props.lambda_function_name, non_empty)
    problems.check_each("allowed_source_cidrs", props.allowed_source_cidrs, cidr)
    problems.check_each("allowed_vpc_endpoint_ids", props.allowed_vpc_endpoint_ids, VPC_ENDPOINT_ID)
    if props.authorizer:
        problems.check("authorizer.invoke_arn", props.authorizer.invoke_arn, non_empty)
        problems.check("authorizer.function_name", props.authorizer.function_name, non_empty)
        problems.check("authorizer.ttl_seconds", props.authorizer.ttl_seconds, between(0, 3600))
    if props.method_settings:
        settings = props.method_settings
        problems.check("method_settings.logging_level", settings.logging_level, one_of("INFO", "ERROR", "OFF"))
        problems.check("method_settings.throttling_rate_limit", settings.throttling_rate_limit, positive)
        problems.check("method_settings.throttling_burst_limit", settings.throttling_burst_limit, positive)
    problems.raise_if_any()


class KeyServiceApi(Construct):
    """Exposes the resources `rest_api`, `resource`, `method`, `integration`, `deployment`, `client_certificate`,
    `stage` and `execution_log_group` (None without execution logs), and the values `rest_api_id`,
    `rest_api_name`, `execution_arn`, `stage_name`, `stage_arn`, `stage_invoke_url`, `client_certificate_id`
    and `invoke_url` (the URL of `POST /keys`)."""

    def __init__(self, scope: Construct, id: str, props: KeyServiceApiProps) -> None:
        _validate_api(props)
        super().__init__(scope, id)
        self.rest_api = self._rest_api(props)
        resource_policy = ApiGatewayRestApiPolicy(
            self, "resource-policy", rest_api_id=self.rest_api_id, policy=self._resource_policy(props)
        )
        model, validator, authorizer = self._resource_and_method(props)
        self.integration = self._integration(props)
        responses = self._responses()
        # What the deployment snapshots, in the order its trigger has always hashed them.
        snapshot = [
            self.resource.id,
            model.id,
            validator.id,
            self.method.id,
            self.integration.id,
            self.integration.uri,
            *(response.id for response in responses),
            resource_policy.id,
            *([authorizer.id] if authorizer else []),
        ]
        self.deployment = self._deployment(
            props, snapshot=snapshot, depends_on=[self.integration, *responses, resource_policy]
        )
        self.stage = self._stage(props)
        self.execution_log_group = (
            self._method_settings(props, props.method_settings) if props.method_settings else None
        )
        self._invoke_permission(props)
        self.invoke_url = f"{self.stage.invoke_url}/{api_contract.RESOURCE_PATH}"

    @property
    def rest_api_id(self) -> str:
        return self.rest_api.id

    @property
    def rest_api_name(self) -> str:
        """A reference to the API's name (what CloudWatch's `ApiName` dimension holds)."""
        return self.rest_api.name

    @property
    def execution_arn(self) -> str:
        return self.rest_api.execution_arn

    @property
    def stage_name(self) -> str:
        """A reference to the stage resource's name: whatever uses it is created after the stage exists."""
        return self.stage.stage_name

    @property
    def stage_arn(self) -> str:
        return self.stage.arn

    @property
    def stage_invoke_url(self) -> str:
        return self.stage.invoke_url

    @property
    def client_certificate_id(self) -> str:
        return self.client_certificate.id

    def _rest_api(self, props: KeyServiceApiProps) -> ApiGatewayRestApi:
        return ApiGatewayRestApi(
            self,
            "rest-api",
            name=props.name,
            description="Creates KMS keys and aliases on request (kms-key-generator)",
            api_key_source="AUTHORIZER" if props.authorizer else "HEADER",
            endpoint_configuration=self._endpoint_configuration(props),
            disable_execute_api_endpoint=props.disable_execute_api_endpoint,
            # A replacement API must exist before the old one goes, so a custom domain never points nowhere.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

    def _resource_and_method(
        self, props: KeyServiceApiProps
    ) -> tuple[ApiGatewayModel, ApiGatewayRequestValidator, ApiGatewayAuthorizer | None]:
        """`/keys`, its request model and body validator, the authorizer if any, and `POST` (API key required).
        Sets `resource` and `method`; returns what the deployment snapshots besides them."""
        self.resource = ApiGatewayResource(
            self,
            "keys-resource",
            rest_api_id=self.rest_api_id,
            parent_id=self.rest_api.root_resource_id,
            path_part=api_contract.RESOURCE_PATH,
        )
        model = ApiGatewayModel(
            self,
            "request-model",
            rest_api_id=self.rest_api_id,
            name="CreateKeyRequest",
            content_type=JSON,
            schema=json.dumps(api_contract.REQUEST_MODEL_SCHEMA, sort_keys=True),
        )
        validator = ApiGatewayRequestValidator(
            self, "request-validator", rest_api_id=self.rest_api_id, name="body", validate_request_body=True
        )
        authorizer = self._token_authorizer(props.authorizer) if props.authorizer else None
        self.method = ApiGatewayMethod(
            self,
            "post-method",
            rest_api_id=self.rest_api_id,
            resource_id=self.resource.id,
            http_method=api_contract.HTTP_METHOD,
            authorization="CUSTOM" if authorizer else "NONE",
            authorizer_id=authorizer.id if authorizer else None,
            api_key_required=True,
            request_models={JSON: model.name},
            request_validator_id=validator.id,
        )
        return model, validator, authorizer

    def _integration(self, props: KeyServiceApiProps) -> ApiGatewayIntegration:
        """Non-proxy Lambda integration through the injection-safe mapping template."""
        return ApiGatewayIntegration(
            self,
            "lambda-integration",
            rest_api_id=self.rest_api_id,
            resource_id=self.resource.id,
            http_method=self.method.http_method,
            type="AWS",
            integration_http_method="POST",
            uri=props.lambda_invoke_arn,
            passthrough_behavior="NEVER",
            request_templates={JSON: api_contract.REQUEST_TEMPLATE},
        )

    def _responses(self) -> list[ApiGatewayIntegrationResponse]:
        """A method response and an integration response per status of the contract (success first)."""
        responses = [(api_contract.SUCCESS_STATUS, None, api_contract.SUCCESS_RESPONSE_TEMPLATE, ())] + [
            (error.status_code, error.selection_pattern, error.response_template, error.headers)
            for error in api_contract.ERROR_RESPONSES
        ]
        integration_responses = []
        for status, pattern, template, headers in responses:
            # A header reaches the client only when the method response declares it.
            parameters = {f"method.response.header.{name}": value for name, value in headers}
            method_response = ApiGatewayMethodResponse(
                self,
                f"method-response-{status}",
                rest_api_id=self.rest_api_id,
                resource_id=self.resource.id,
                http_method=self.method.http_method,
                status_code=status,
                response_models={JSON: "Empty"},
                response_parameters={name: True for name in parameters} or None,
            )
            integration_responses.append(
                ApiGatewayIntegrationResponse(
                    self,
                    f"integration-response-{status}",
                    rest_api_id=self.rest_api_id,
                    resource_id=self.resource.id,
                    http_method=self.method.http_method,
                    status_code=method_response.status_code,
                    selection_pattern=pattern,
                    response_templates={JSON: template},
                    response_parameters=parameters or None,
                    depends_on=[self.integration],
                )
            )
        return integration_responses

    def _deployment(
        self, props: KeyServiceApiProps, *, snapshot: list[str], depends_on: list[ITerraformDependable]
    ) -> ApiGatewayDeployment:
        """A deployment of the API as it is after `depends_on`, replaced whenever the ids in `snapshot` (the
        pieces it snapshots) or the contract change."""
        return ApiGatewayDeployment(
            self,
            "deployment",
            rest_api_id=self.rest_api_id,
            description="Managed by kms-key-generator; replaced whenever the API model changes",
            # A deployment is a snapshot, so it is replaced whenever what shapes the API changes: the
            # contract and access rules (hashed here from configuration, because AWS normalises the
            # JSON it stores and state values would drift) and the ids of the pieces it snapshots.
            triggers={
                "contract": api_contract.deployment_hash(
                    allowed_source_cidrs=props.allowed_source_cidrs,
                    allowed_vpc_endpoint_ids=props.allowed_vpc_endpoint_ids,
                    authorizer_ttl=props.authorizer.ttl_seconds if props.authorizer else None,
                    disable_execute_api_endpoint=bool(props.disable_execute_api_endpoint),
                ),
                "resources": Fn.sha1(Fn.jsonencode(snapshot)),
            },
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            depends_on=depends_on,
        )

    def _stage(self, props: KeyServiceApiProps) -> ApiGatewayStage:
        """The client certificate (set as `client_certificate`) and the stage presenting it, with access logs and
        X-Ray tracing when asked."""
        self.client_certificate = ApiGatewayClientCertificate(
            self, "client-certificate", description=props.client_certificate_description
        )
        return ApiGatewayStage(
            self,
            "stage",
            rest_api_id=self.rest_api_id,
            stage_name=props.stage_name,
            deployment_id=self.deployment.id,
            client_certificate_id=self.client_certificate.id,
            access_log_settings=ApiGatewayStageAccessLogSettings(
                destination_arn=props.access_log_group_arn, format=ACCESS_LOG_FORMAT
            )
            if props.access_log_group_arn
            else None,
            xray_tracing_enabled=props.tracing or None,
            depends_on=list(props.stage_depends_on) or None,
        )

    def _method_settings(self, props: KeyServiceApiProps, settings: MethodSettingsProps) -> CloudwatchLogGroup | None:
        """Stage-wide method settings; returns the execution log group, created first (None when logging is
        OFF)."""
        execution_log_group = None
        if settings.logging_level != "OFF":
            # API Gateway writes execution logs to this group and creates it if missing (unencrypted,
            # never deleted); creating it first keeps it ours.
            execution_log_group = LogGroup(
                self,
                "execution-logs",
                LogGroupProps(
                    name=f"API-Gateway-Execution-Logs_{self.rest_api_id}/{props.stage_name}",
                    kms_key_arn=props.log_kms_key_arn,
                ),
            ).log_group
        ApiGatewayMethodSettings(
            self,
            "method-settings",
            rest_api_id=self.rest_api_id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=ApiGatewayMethodSettingsSettings(
                logging_level=settings.logging_level,
                metrics_enabled=settings.metrics_enabled,
                # Full request/response logging would write API keys and key requests to the logs.
                data_trace_enabled=False,
                throttling_rate_limit=settings.throttling_rate_limit,
                throttling_burst_limit=settings.throttling_burst_limit,
                # A POST that creates a key must never be answered from a cache.
                caching_enabled=False,
            ),
            depends_on=[*props.stage_depends_on, *filter(None, [execution_log_group])] or None,
        )
        return execution_log_group

    def _invoke_permission(self, props: KeyServiceApiProps) -> None:
        """API Gateway may invoke the function for `POST /keys` of this API only."""
        LambdaPermission(
            self,
            "invoke-permission",
            statement_id="AllowInvokeFromApiGateway",
            action="lambda:InvokeFunction",
            function_name=props.lambda_function_name,
            principal="apigateway.amazonaws.com",
            source_arn=f"{self.execution_arn}/*/{api_contract.HTTP_METHOD}/{api_contract.RESOURCE_PATH}",
        )

    def _token_authorizer(self, props: AuthorizerProps) -> ApiGatewayAuthorizer:
        """REQUEST authorizer on `Authorization`, allowed to invoke its function from this API only."""
        authorizer = ApiGatewayAuthorizer(
            self,
            "token-authorizer",
            name="bearer-tokens",
            rest_api_id=self.rest_api_id,
            type="REQUEST",
            authorizer_uri=props.invoke_arn,
            identity_source="method.request.header.Authorization",
            authorizer_result_ttl_in_seconds=props.ttl_seconds,
        )
        LambdaPermission(
            self,
            "authorizer-permission",
            statement_id="AllowInvokeFromApiGatewayAuthorizer",
            action="lambda:InvokeFunction",
            function_name=props.function_name,
            principal="apigateway.amazonaws.com",
            source_arn=f"{self.execution_arn}/authorizers/{authorizer.id}",
        )
        return authorizer

    @staticmethod
    def _endpoint_configuration(props: KeyServiceApiProps) -> ApiGatewayRestApiEndpointConfiguration:
        """PRIVATE with the allowed VPC endpoints, else REGIONAL.

        `aws:SourceVpce` is only in the request context of a private API: a REGIONAL API whose policy denied
        requests without the right endpoint would deny every request. Private, the API is reached through those
        endpoints only (their execute-api hostnames), and the policy's endpoint check then holds.
        """
        if props.allowed_vpc_endpoint_ids:
            return ApiGatewayRestApiEndpointConfiguration(
                types=["PRIVATE"], vpc_endpoint_ids=list(props.allowed_vpc_endpoint_ids)
            )
        return ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"])

    def _resource_policy(self, props: KeyServiceApiProps) -> str:
        """Allow invocation, then deny sources outside the allowed CIDRs / VPC endpoints."""
        api = f"{self.execution_arn}/*"
        # Requests through a VPC endpoint (a private API) carry a private aws:VpcSourceIp and no aws:SourceIp.
        ip_key = "aws:VpcSourceIp" if props.allowed_vpc_endpoint_ids else "aws:SourceIp"
        statements = [
            policy.statement("AllowInvoke", ["execute-api:Invoke"], api, principal="*"),
            policy.statement(
                "DenyOutsideAllowedCidrs",
                ["execute-api:Invoke"],
                api,
                effect="Deny",
                principal="*",
                condition={"NotIpAddress": {ip_key: list(props.allowed_source_cidrs)}},
            ),
        ]
        if props.allowed_vpc_endpoint_ids:
            statements.append(
                policy.statement(
                    "DenyOutsideAllowedVpcEndpoints",
                    ["execute-api:Invoke"],
                    api,
                    effect="Deny",
                    principal="*",
                    condition={"StringNotEquals": {"aws:SourceVpce": list(props.allowed_vpc_endpoint_ids)}},
                )
            )
        return policy.document(*statements)


@dataclass(frozen=True, kw_only=True)
class UsagePlanProps:
    name: str
    rest_api_id: str
    stage_name: str
    """Reference to the stage resource's name, so the plan is created after the stage exists."""
    throttle_rate_limit: float
    throttle_burst_limit: int
    quota_limit: int
    quota_period: str
    """DAY, WEEK or MONTH."""
    quota_offset: int = 0
    method_throttles: tuple[tuple[str, float, int], ...] = ()
    """`(resource path/METHOD, rate limit, burst limit)` overrides. Default: the plan's throttle everywhere."""


def _validate_plan(props: UsagePlanProps) -> None:
    problems = Problems("UsagePlan")
    problems.check("name", props.name, matches(r".{1,1024}", "1-1024 characters"))
    problems.check("rest_api_id", props.rest_api_id, non_empty)
    problems.check("stage_name", props.stage_name, STAGE_NAME)
    problems.check("throttle_rate_limit", props.throttle_rate_limit, positive)
    problems.check("throttle_burst_limit", props.throttle_burst_limit, positive)
    problems.check("quota_limit", props.quota_limit, positive)
    problems.check("quota_period", props.quota_period, one_of("DAY", "WEEK", "MONTH"))
    problems.check("quota_offset", props.quota_offset, non_negative)
    for index, (path, rate, burst) in enumerate(props.method_throttles):
        problems.check(f"method_throttles[{index}].path", path, METHOD_PATH)
        problems.check(f"method_throttles[{index}].rate_limit", rate, positive)
        problems.check(f"method_throttles[{index}].burst_limit", burst, positive)
    problems.raise_if_any()


class UsagePlan(Construct):
    """A usage plan with throttle and quota on one stage; exposes `usage_plan` and `usage_plan_id`.
    `add_api_key(key)` makes an `ApiKey` one of the plan's keys."""

    def __init__(self, scope: Construct, id: str, props: UsagePlanProps) -> None:
        _validate_plan(props)
        super().__init__(scope, id)
        self.usage_plan = ApiGatewayUsagePlan(
            self,
            "usage-plan",
            name=props.name,
            api_stages=[
                ApiGatewayUsagePlanApiStages(
                    api_id=props.rest_api_id,
                    stage=props.stage_name,
                    throttle=[
                        ApiGatewayUsagePlanApiStagesThrottle(path=path, rate_limit=rate, burst_limit=burst)
                        for path, rate, burst in props.method_throttles
                    ]
                    or None,
                )
            ],
            throttle_settings=ApiGatewayUsagePlanThrottleSettings(
                rate_limit=props.throttle_rate_limit, burst_limit=props.throttle_burst_limit
            ),
            quota_settings=ApiGatewayUsagePlanQuotaSettings(
                limit=props.quota_limit, period=props.quota_period, offset=props.quota_offset
            ),
        )

    @property
    def usage_plan_id(self) -> str:
        return self.usage_plan.id

    def add_api_key(self, key: ApiKey) -> ApiGatewayUsagePlanKey:
        """Attach `key` to this plan, so the plan's throttle and quota apply to it. The plan key is created in
        the key's scope (`<key>/usage-plan-key`): its address follows the key, never the order keys are added."""
        return key._join(self)


@dataclass(frozen=True, kw_only=True)
class ApiKeyProps:
    name: str
    description: str = ""


class ApiKey(Construct):
    """An AWS-generated API key; exposes `api_key`, `key_id` and `value` (sensitive). It serves once a usage plan
    holds it (`UsagePlan.add_api_key`)."""

    def __init__(self, scope: Construct, id: str, props: ApiKeyProps) -> None:
        problems = Problems("ApiKey")
        problems.check("name", props.name, matches(r".{1,1024}", "1-1024 characters"))
        problems.raise_if_any()
        super().__init__(scope, id)
        self.api_key = ApiGatewayApiKey(self, "api-key", name=props.name, description=props.description, enabled=True)
        self._plan: UsagePlan | None = None

    @property
    def key_id(self) -> str:
        return self.api_key.id

    @property
    def value(self) -> str:
        return self.api_key.value

    def _join(self, plan: UsagePlan) -> ApiGatewayUsagePlanKey:
        if self._plan is not None:
            # One plan key per key keeps its address `<key>/usage-plan-key`; API Gateway also refuses a key in two
            # plans of the same stage.
            raise ValueError(
                f"UsagePlan.add_api_key: key {self.node.path} already belongs to usage plan {self._plan.node.path}"
            )
        self._plan = plan
        return ApiGatewayUsagePlanKey(
            self, "usage-plan-key", key_id=self.key_id, key_type="API_KEY", usage_plan_id=plan.usage_plan_id
        )
