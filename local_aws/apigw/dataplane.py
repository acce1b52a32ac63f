"""API Gateway's data plane for the REST APIs deployed to the emulator.

moto 5.2.5 stores REST APIs but serves no traffic in server mode. Here a request to
``/restapis/<api id>/<stage>/_user_request_/<path>`` (the URL form other AWS emulators use), or to a custom
domain's base path (``Host: <domain>``), goes through the steps API Gateway documents, in its order, using only
what the control plane stored (what Terraform applied), never our synth:

1. the stage and its deployment: a deployment is a snapshot (``snapshot_of``, taken by ``CreateDeployment``), so
   a changed method, template, model, authorizer or resource policy is served only after a new deployment;
   stage settings, usage plans and keys apply at once, as in AWS. An API whose execute-api endpoint is disabled
   answers 403 ``Forbidden`` on this URL form (its custom domain still serves it);
2. route matching (literal segments before ``{param}``, ``{proxy+}`` greedy, ``ANY``): 403
   ``Missing Authentication Token``;
3. the resource policy (phase 1: explicit denies; without an authorizer an explicit allow is needed): 403
   ``User: anonymous is not authorized to perform: execute-api:Invoke on resource: <arn>[ with an explicit deny]``;
4. a REQUEST Lambda authorizer: identity sources missing: 401 without invoking; ``Unauthorized``: 401; an
   explicit Deny: 403; no Allow (and no Allow from the resource policy): 403; decisions cached per identity for
   the authorizer's TTL; ``context`` passed on as ``$context.authorizer.*``; a failing authorizer: 500;
5. the API key (``apiKeySource`` HEADER: ``x-api-key``; AUTHORIZER: the authorizer's ``usageIdentifierKey``):
   missing, unknown, disabled, or in no usage plan of this stage: 403 ``Forbidden``;
6. throttling: the key's usage plan (per-method override, else the plan's) and the stage's method settings
   (``resource/METHOD``, else ``*/*``), token buckets: 429 ``Too Many Requests``; then the plan's quota: 429
   ``Limit Exceeded``; admitted requests are recorded so ``GetUsage`` reports them;
7. the request validator with the method's model (JSON Schema draft 4): 400 ``Invalid request body``;
8. the integration request template (selected by ``Content-Type``; passthrough behaviour; 415 when NEVER and no
   template matches), rendered by ``local_aws.apigw.vtl`` with ``$context``;
9. the AWS (non-proxy) Lambda integration, run by the emulator's Lambda runner, only when the function's resource
   policy lets ``apigateway.amazonaws.com`` invoke it from this method's ARN (else 500 ``Internal server error``);
   past the integration timeout (29 s by default): 504 ``Endpoint request timed out``;
10. the integration response whose selection pattern matches the Lambda's ``errorMessage`` (the default one for
    a success or no match), its template applied to the Lambda's result, its ``responseParameters`` mapped to the
    headers its method response declares;
11. one access-log line in the stage's format, written to the stage's access-log group.
What differs from API Gateway is listed in the README ("Emulator gaps").
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jsonschema
from moto.apigateway.models import APIGatewayBackend, Deployment, Method, RestAPI, Stage, apigateway_backends

from . import limits, policy, vtl

LOG = logging.getLogger(__name__)
USER_REQUEST = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")
API_KEY_HEADER = "x-api-key"
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000
JSON = "application/json"
_LAMBDA_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<function>.+)/invocations$")
# Identity sources of a REQUEST authorizer: `method.request.header.X`, `method.request.querystring.X`, ...
_IDENTITY_SOURCE = re.compile(r"^method\.request\.(header|querystring|multivalueheader|multivaluequerystring)\.(.+)$")
_ACCESS_LOG_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+)")
_METHOD_RESPONSE_HEADER = "method.response.header."
_RESPONSE_BODY = "integration.response.body"
# One step of a mapping's JSON path (`errors[0].type`): a field name or an array index.
_JSON_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_invoker = ThreadPoolExecutor(max_workers=32, thread_name_prefix="apigw-integration")


class GatewayError(Exception):
    """A response API Gateway itself produces (a "gateway response"): status, error type and message."""

    def __init__(self, status: int, error_type: str, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def _forbidden() -> GatewayError:
    return GatewayError(403, "ForbiddenException", "Forbidden")


def _internal_error() -> GatewayError:
    return GatewayError(500, "InternalServerErrorException", "Internal server error")


# --- deployments are snapshots ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a deployment froze of its API: resources (with their paths), authorizers, models, validators, policy."""

    resources: dict[str, Any]
    paths: dict[str, str]
    authorizers: dict[str, Any]
    models: dict[str, Any]
    validators: dict[str, Any]
    policy: str | None
    api_key_source: str
    execute_api_disabled: bool


def snapshot_of(api: RestAPI) -> Snapshot:
    """Deep copies, so later control-plane changes reach clients only through a new deployment, as in AWS."""
    paths = {resource_id: resource.get_path() for resource_id, resource in api.resources.items()}
    resources = {rid: copy.copy(r) for rid, r in api.resources.items()}
    for resource in resources.values():
        resource.resource_methods = copy.deepcopy(resource.resource_methods)
    return Snapshot(
        resources=resources,
        paths=paths,
        authorizers=copy.deepcopy(api.authorizers),
        models=copy.deepcopy(api.models),
        validators=copy.deepcopy(api.request_validators),
        policy=api.policy,
        api_key_source=api.api_key_source or "HEADER",
        execute_api_disabled=bool(api.disableExecuteApiEndpoint),
    )


def remember_snapshot(api: RestAPI, deployment: Deployment) -> None:
    deployment.local_aws_snapshot = snapshot_of(api)


# --- requests --------------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names (HTTP header names are case-insensitive)."""
    query: dict[str, list[str]]
    body: bytes
    source_ip: str
    user_agent: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Call:
    """One request's way through the pipeline: what later steps and the access log need."""

    request: Request
    backend: APIGatewayBackend
    api: RestAPI
    stage: Stage
    snapshot: Snapshot
    context: dict[str, Any]
    started: float
    resource_path: str = ""
    method: Method | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    usage_identifier_key: str | None = None
    """The authorizer's `usageIdentifierKey`: the API key when the key source is AUTHORIZER."""
    integration_latency: int | None = None


# --- route matching --------------------------------------------------------------------------------------------


def match_route(snapshot: Snapshot, path: str, http_method: str) -> tuple[str, Method, dict[str, str]]:
    """The resource path, method and path parameters serving ``path``; 403 Missing Authentication Token if none."""
    segments = [s for s in path.split("/") if s]
    candidates = []
    for resource_id, template in snapshot.paths.items():
        params = _match_path(template, segments)
        if params is not None:
            # Literal segments beat parameters, parameters beat a greedy {proxy+}: sort by (greedy, #params).
            greedy = template.endswith("+}")
            candidates.append(((greedy, len(params)), resource_id, template, params))
    for _, resource_id, template, params in sorted(candidates, key=lambda c: c[0]):
        methods = snapshot.resources[resource_id].resource_methods
        method = methods.get(http_method) or methods.get("ANY")
        if method is not None:
            return template, method, params
    raise GatewayError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def _match_path(template: str, segments: list[str]) -> dict[str, str] | None:
    parts = [p for p in template.split("/") if p]
    params: dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if index >= len(segments):
                return None
            params[part[1:-2]] = "/".join(segments[index:])
            return params
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[index]
        elif part != segments[index]:
            return None
    return params if len(parts) == len(segments) else None


# --- authorizer decisions, cached per identity -----------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizerDecision:
    policy_document: Any
    context: dict[str, Any]
    principal_id: str | None
    usage_identifier_key: str | None


class AuthorizerCache:
    """Decisions by (API, authorizer, identity values) until their TTL runs out; the clock is injectable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], tuple[float, AuthorizerDecision]] = {}

    def get(self, key: tuple[Any, ...], now: float) -> AuthorizerDecision | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[Any, ...], decision: AuthorizerDecision, ttl: float, now: float) -> None:
        if ttl > 0:
            with self._lock:
                self._entries[key] = (now + ttl, decision)


# --- the pipeline ----------------------------------------------------------------------------------------------


class DataPlane:
    """Serves requests for every REST API in the emulator's API Gateway backends (all accounts and regions)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.throttles = limits.Throttles()
        self.authorizers = AuthorizerCache()

    # entry points

    def handle_user_request(self, api_id: str, stage_name: str, request: Request) -> Response:
        return self._serve(api_id, stage_name, request, via_execute_api=True)

    def handle_domain_request(self, domain: str, request: Request) -> Response | None:
        """A request to a custom domain: its base path mapping picks the API and stage; None if no such domain."""
        for backend in _backends():
            mappings = backend.base_path_mappings.get(domain)
            if domain not in backend.domain_names or not mappings:
                continue
            segments = [s for s in request.path.split("/") if s]
            first = segments[0] if segments else ""
            mapping = mappings.get(first) or mappings.get("(none)")
            if mapping is None:
                return _gateway_response(_forbidden(), str(uuid.uuid4()))
            if mapping.base_path != "(none)":
                request.path = "/" + "/".join(segments[1:])
            return self._serve(mapping.rest_api_id, mapping.stage, request, via_execute_api=False)
        return None

    def _serve(self, api_id: str, stage_name: str, request: Request, *, via_execute_api: bool) -> Response:
        request_id = str(uuid.uuid4())
        call = None
        try:
            call = self._begin(api_id, stage_name, request, request_id, via_execute_api)
            response = self._run(call)
        except policy.UnsupportedPolicy as error:  # a policy this emulator cannot evaluate: say so, never guess
            LOG.warning("request %s: cannot evaluate a policy: %s", request_id, error)
            response = _gateway_response(_internal_error(), request_id)
        except GatewayError as error:
            response = _gateway_response(error, request_id)
            if call is not None:
                call.context["error"] = {"message": error.message, "messageString": json.dumps(error.message)}
        response.headers.setdefault("x-amzn-RequestId", request_id)
        response.headers.setdefault("x-amz-apigw-id", request_id[:16])
        if call is not None:
            self._access_log(call, response)
        return response

    def _begin(self, api_id: str, stage_name: str, request: Request, request_id: str, via_execute_api: bool) -> _Call:
        backend, api = _find_api(api_id)
        stage = api.stages.get(stage_name)
        deployment = api.deployments.get(stage.deployment_id) if stage is not None else None
        snapshot = getattr(deployment, "local_aws_snapshot", None)
        if stage is None or snapshot is None:
            raise _forbidden()
        if via_execute_api and snapshot.execute_api_disabled:
            raise _forbidden()
        now = datetime.datetime.now(datetime.UTC)
        context: dict[str, Any] = {
            "requestId": request_id,
            "extendedRequestId": request_id[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "accountId": api.account_id,
            "apiId": api.id,
            "stage": stage.name,
            "httpMethod": request.method,
            "path": f"/{stage.name}{request.path}",
            "protocol": "HTTP/1.1",
            "domainName": request.header("host") or "",
            "identity": {"sourceIp": request.source_ip, "userAgent": request.user_agent, "caller": None},
            "authorizer": {},
        }
        return _Call(request, backend, api, stage, snapshot, context, self.clock())

    def _run(self, call: _Call) -> Response:
        request = call.request
        call.resource_path, call.method, call.path_params = match_route(call.snapshot, request.path, request.method)
        call.context["resourcePath"] = call.resource_path
        call.context["resourceId"] = next(
            rid for rid, path in call.snapshot.paths.items() if path == call.resource_path
        )
        self._check_resource_policy(call)
        if call.method.authorization_type == "CUSTOM":
            self._authorize(call)
        elif call.snapshot.policy and not self._resource_policy_allows(call):
            raise _access_denied(self._method_arn(call), explicit=False)
        plan_key = self._check_api_key(call) if call.method.api_key_required else None
        self._throttle(call, plan_key)
        self._validate(call)
        return self._integrate(call)

    # 3. resource policy

    def _method_arn(self, call: _Call) -> str:
        return _execute_api_arn(call, f"{call.stage.name}/{call.request.method}{call.resource_path}")

    def _policy_request(self, call: _Call, principal: policy.Principal | None) -> policy.Request:
        return policy.Request(
            action="execute-api:Invoke",
            resource=self._method_arn(call),
            principal=principal,
            context={"aws:SourceIp": call.request.source_ip},
        )

    def _resource_policy_decision(self, call: _Call) -> policy.Decision:
        document = policy.expand_execute_api_shorthand(
            call.snapshot.policy or "{}",
            region=call.api.region_name,
            account_id=call.api.account_id,
            api_id=call.api.id,
        )
        return policy.evaluate([document], self._policy_request(call, policy.Principal.anonymous()))

    def _check_resource_policy(self, call: _Call) -> None:
        if call.snapshot.policy and self._resource_policy_decision(call) == policy.Decision.DENY:
            raise _access_denied(self._method_arn(call), explicit=True)

    def _resource_policy_allows(self, call: _Call) -> bool:
        return bool(call.snapshot.policy) and self._resource_policy_decision(call) == policy.Decision.ALLOW

    # 4. REQUEST authorizer

    def _authorize(self, call: _Call) -> None:
        authorizer = call.snapshot.authorizers.get(call.method.authorizer_id or "")
        if authorizer is None or (authorizer.type or "").upper() != "REQUEST":
            raise GatewayError(500, "AuthorizerConfigurationException", None)
        identity = []
        for source in (authorizer.identity_source or "").split(","):
            value = self._identity_value(call.request, source.strip())
            if not value:
                raise GatewayError(401, "UnauthorizedException", "Unauthorized")
            identity.append(value)
        key = (call.api.account_id, call.api.id, call.stage.name, authorizer.id, tuple(identity))
        decision = self.authorizers.get(key, self.clock())
        if decision is None:
            decision = self._invoke_authorizer(call, authorizer)
            self.authorizers.put(key, decision, float(authorizer.authorizer_result_ttl or 0), self.clock())
        verdict = policy.evaluate([decision.policy_document], self._policy_request(call, None))
        if verdict == policy.Decision.DENY:
            raise GatewayError(
                403, "AccessDeniedException", "User is not authorized to access this resource with an explicit deny"
            )
        if verdict != policy.Decision.ALLOW and not self._resource_policy_allows(call):
            raise GatewayError(403, "AccessDeniedException", "User is not authorized to access this resource")
        call.context["authorizer"] = {**decision.context, "principalId": decision.principal_id}
        call.usage_identifier_key = decision.usage_identifier_key

    @staticmethod
    def _identity_value(request: Request, source: str) -> str | None:
        match = _IDENTITY_SOURCE.match(source)
        if match is None:
            return None
        location, name = match.groups()
        if location.endswith("header"):
            return request.header(name)
        values = request.query.get(name)
        return values[0] if values else None

    def _invoke_authorizer(self, call: _Call, authorizer: Any) -> AuthorizerDecision:
        request = call.request
        event = {
            "type": "REQUEST",
            "methodArn": self._method_arn(call),
            "resource": call.resource_path,
            "path": request.path,
            "httpMethod": request.method,
            "headers": {name: value for name, value in request.headers.items()},
            "multiValueHeaders": {name: [value] for name, value in request.headers.items()},
            "queryStringParameters": {name: values[-1] for name, values in request.query.items()},
            "multiValueQueryStringParameters": dict(request.query),
            "pathParameters": dict(call.path_params),
            "stageVariables": dict(call.stage.variables or {}),
            "requestContext": {
                "accountId": call.api.account_id,
                "apiId": call.api.id,
                "httpMethod": request.method,
                "requestId": call.context["requestId"],
                "resourceId": call.context["resourceId"],
                "resourcePath": call.resource_path,
                "stage": call.stage.name,
                "identity": {"sourceIp": request.source_ip, "userAgent": request.user_agent},
            },
        }
        source_arn = _execute_api_arn(call, f"authorizers/{authorizer.id}")
        payload, error = self._invoke_lambda(call, authorizer.authorizer_uri, event, source_arn, timeout_ms=10_000)
        if error is not None:
            if error == "Unauthorized":
                raise GatewayError(401, "UnauthorizedException", "Unauthorized")
            raise GatewayError(500, "AuthorizerFailureException", None)
        output = payload if isinstance(payload, dict) else {}
        document = output.get("policyDocument")
        if not isinstance(document, dict) or "principalId" not in output:
            raise GatewayError(500, "AuthorizerConfigurationException", None)
        context = output.get("context") or {}
        if not isinstance(context, dict) or any(isinstance(v, (dict, list)) for v in context.values()):
            raise GatewayError(500, "AuthorizerConfigurationException", None)  # only string/number/boolean values
        usage_key = output.get("usageIdentifierKey")
        return AuthorizerDecision(document, dict(context), str(output["principalId"]), usage_key)

    # 5. API key and its usage plan

    def _check_api_key(self, call: _Call) -> tuple[Any, Any]:
        if call.snapshot.api_key_source == "AUTHORIZER":
            value = call.usage_identifier_key
        else:
            value = call.request.header(API_KEY_HEADER)
        key = next((k for k in call.backend.keys.values() if value and k.value == value), None)
        if key is None or not key.enabled:
            raise _forbidden()
        for plan in call.backend.usage_plans.values():
            serves_stage = any(
                s.get("apiId") == call.api.id and s.get("stage") == call.stage.name for s in plan.api_stages or []
            )
            if serves_stage and key.id in call.backend.usage_plan_keys.get(plan.id, {}):
                call.context["identity"].update({"apiKey": key.value, "apiKeyId": key.id})
                return plan, key
        raise _forbidden()

    # 6. throttling and quota

    def _throttle(self, call: _Call, plan_key: tuple[Any, Any] | None) -> None:
        now = self.clock()
        method_path = f"{call.resource_path}/{call.request.method}"
        too_many = GatewayError(429, "TooManyRequestsException", "Too Many Requests")
        if plan_key is not None:
            plan, key = plan_key
            limit = _plan_throttle(plan, call.api.id, call.stage.name, method_path)
            if limit is not None and not self.throttles.admit(("plan", plan.id, key.id, method_path), *limit, now):
                raise too_many
        stage_limit = _stage_throttle(call.stage, call.resource_path, call.request.method)
        if stage_limit is not None:
            scope = ("stage", call.api.account_id, call.api.id, call.stage.name, method_path)
            if not self.throttles.admit(scope, *stage_limit, now):
                raise too_many
        if plan_key is not None:
            plan, key = plan_key
            ledger = _usage_ledger(call.backend)
            if not ledger.consume(plan.id, key.id, plan.quota or None, datetime.datetime.now(datetime.UTC)):
                raise GatewayError(429, "LimitExceededException", "Limit Exceeded")

    # 7. request validation

    def _validate(self, call: _Call) -> None:
        method = call.method
        validator = call.snapshot.validators.get(method.request_validator_id or "")
        if validator is None:
            return
        if validator.validate_request_parameters:
            missing = [
                name.split(".", 3)[3]
                for name, required in (method.request_parameters or {}).items()
                if required and not self._parameter(call, name)
            ]
            if missing:
                raise GatewayError(
                    400, "BadRequestException", f"Missing required request parameters: [{', '.join(missing)}]"
                )
        if validator.validate_request_body:
            content_type = _content_type(call.request)
            models = method.request_models or {}
            model_name = models.get(content_type) or models.get("$default")
            model = next((m for m in call.snapshot.models.values() if m.name == model_name), None)
            if model is None or not model.schema:
                return
            try:
                document = json.loads(call.request.body or b"null")
                jsonschema.Draft4Validator(json.loads(model.schema)).validate(document)
            except (ValueError, jsonschema.ValidationError):
                raise GatewayError(400, "BadRequestException", "Invalid request body") from None

    @staticmethod
    def _parameter(call: _Call, name: str) -> str | None:
        parts = name.split(".", 3)
        if len(parts) != 4:
            return None
        location, key = parts[2], parts[3]
        if location == "header":
            return call.request.header(key)
        if location == "querystring":
            values = call.request.query.get(key)
            return values[0] if values else None
        if location == "path":
            return call.path_params.get(key)
        return None

    # 8-10. integration

    def _integrate(self, call: _Call) -> Response:
        integration = call.method.method_integration
        if integration is None or integration.integration_type != "AWS" or not _LAMBDA_URI.match(integration.uri or ""):
            raise _internal_error()  # only what our stack uses: AWS (non-proxy) Lambda integrations
        event_text = self._integration_request(call, integration)
        timeout_ms = int(integration.timeout_in_millis or DEFAULT_INTEGRATION_TIMEOUT_MS)
        try:
            event = json.loads(event_text) if event_text.strip() else {}
        except ValueError:
            raise _internal_error() from None  # Lambda refuses a payload that is not JSON
        started = self.clock()
        payload, error = self._invoke_lambda(
            call, integration.uri, event, self._method_arn(call), timeout_ms=timeout_ms
        )
        call.integration_latency = int((self.clock() - started) * 1000)
        return self._integration_response(call, integration, payload, error)

    def _integration_request(self, call: _Call, integration: Any) -> str:
        body = call.request.body.decode("utf-8", "replace")
        templates = integration.request_templates or {}
        content_type = _content_type(call.request)
        template = templates.get(content_type)
        behaviour = (integration.passthrough_behaviour or "WHEN_NO_MATCH").upper()
        if template is None:
            if behaviour == "NEVER" or (behaviour == "WHEN_NO_TEMPLATES" and templates):
                raise GatewayError(415, "UnsupportedMediaTypeException", "Unsupported Media Type")
            return body
        return vtl.render(
            template,
            body,
            context=call.context,
            params=_params(call),
            stage_variables=dict(call.stage.variables or {}),
        )

    def _invoke_lambda(
        self, call: _Call, uri: str, event: Any, source_arn: str, *, timeout_ms: int
    ) -> tuple[Any, str | None]:
        """(result, None) or (error payload, errorMessage); checks the function's resource policy first."""
        match = _LAMBDA_URI.match(uri or "")
        if match is None:
            raise _internal_error()
        from moto.awslambda.models import lambda_backends

        function_arn = match.group("function")
        parts = function_arn.split(":")
        account, region = (parts[4], parts[3]) if len(parts) >= 7 else (call.api.account_id, call.api.region_name)
        try:
            function = lambda_backends[account][region].get_function(function_arn)
        except Exception:
            raise _internal_error() from None
        if not _invoke_permitted(function, source_arn, call.api.account_id):
            raise _internal_error()  # AWS: "Execution failed due to configuration error: Invalid permissions"
        response_headers: dict[str, str] = {}
        future = _invoker.submit(function.invoke, json.dumps(event), {}, response_headers)
        try:
            raw = future.result(timeout=timeout_ms / 1000)
        except FutureTimeout:
            raise GatewayError(504, "IntegrationTimeout", "Endpoint request timed out") from None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        if response_headers.get("x-amz-function-error"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else None
            return payload, str(message) if message is not None else ""
        return payload, None

    def _integration_response(self, call: _Call, integration: Any, payload: Any, error: str | None) -> Response:
        responses = list((integration.integration_responses or {}).values())
        selected = None
        message = error or ""
        for candidate in responses:
            if candidate.selection_pattern and re.fullmatch(candidate.selection_pattern, message):
                selected = candidate
                break
        if selected is None:
            selected = next((r for r in responses if not r.selection_pattern), None)
        if selected is None:
            raise _internal_error()  # "No match for output mapping and no default output mapping specified"
        payload_text = json.dumps(payload) if not isinstance(payload, str) else payload
        templates = selected.response_templates or {}
        template = templates.get(JSON) or next(iter(templates.values()), None)
        body = payload_text
        if template:
            body = vtl.render(
                template,
                payload_text,
                context=call.context,
                params=_params(call),
                stage_variables=dict(call.stage.variables or {}),
            )
        headers = {"Content-Type": JSON, **_mapped_headers(call, selected, payload)}
        return Response(int(selected.status_code), body.encode("utf-8"), headers)

    # 11. access log

    def _access_log(self, call: _Call, response: Response) -> None:
        settings = call.stage.access_log_settings or {}
        destination, log_format = settings.get("destinationArn"), settings.get("format")
        if not destination or not log_format:
            return
        call.context["status"] = response.status
        call.context["responseLatency"] = int((self.clock() - call.started) * 1000)
        call.context["integrationLatency"] = call.integration_latency
        line = _ACCESS_LOG_VARIABLE.sub(lambda m: _access_value(call.context, m.group(1)), log_format)
        _write_log(destination, f"{call.api.id}_{call.stage.name}", line)


# --- helpers ---------------------------------------------------------------------------------------------------


def _backends() -> Iterable[APIGatewayBackend]:
    for regions in list(apigateway_backends.values()):
        yield from list(regions.values())


def _execute_api_arn(call: _Call, path: str) -> str:
    """`arn:aws:execute-api:<region>:<account>:<api id>/<path>`: what policies and Lambda permissions name."""
    return f"arn:aws:execute-api:{call.api.region_name}:{call.api.account_id}:{call.api.id}/{path}"


def _find_api(api_id: str) -> tuple[APIGatewayBackend, RestAPI]:
    for backend in _backends():
        if api_id in backend.apis:
            return backend, backend.apis[api_id]
    raise GatewayError(404, "NotFoundException", f"No REST API {api_id} in this emulator")


def _usage_ledger(backend: APIGatewayBackend) -> limits.UsageLedger:
    from local_aws.apigateway_gaps import usage_ledger

    return usage_ledger(backend)


def _access_denied(arn: str, *, explicit: bool) -> GatewayError:
    suffix = " with an explicit deny" if explicit else ""
    return GatewayError(
        403,
        "AccessDeniedException",
        f"User: anonymous is not authorized to perform: execute-api:Invoke on resource: {arn}{suffix}",
    )


def _gateway_response(error: GatewayError, request_id: str) -> Response:
    body = json.dumps({"message": error.message}).encode()
    return Response(
        error.status,
        body,
        {"Content-Type": JSON, "x-amzn-ErrorType": error.error_type, "x-amzn-RequestId": request_id},
    )


def _content_type(request: Request) -> str:
    value = request.header("content-type") or JSON
    return value.split(";", 1)[0].strip().lower() or JSON


def _plan_throttle(plan: Any, api_id: str, stage: str, method_path: str) -> tuple[float, int] | None:
    """The per-method override of the plan's stage entry, else the plan's own throttle (None: no limit)."""
    for api_stage in plan.api_stages or []:
        if api_stage.get("apiId") == api_id and api_stage.get("stage") == stage:
            override = (api_stage.get("throttle") or {}).get(method_path)
            if override:
                return float(override.get("rateLimit", 0)), int(override.get("burstLimit", 0))
    throttle = plan.throttle or {}
    if "rateLimit" not in throttle and "burstLimit" not in throttle:
        return None
    return float(throttle.get("rateLimit", 0)), int(throttle.get("burstLimit", 0))


def _stage_throttle(stage: Stage, resource_path: str, http_method: str) -> tuple[float, int] | None:
    """The stage's method settings for `resource/METHOD` (path without its leading slash), else `*/*`."""
    settings = stage.method_settings or {}
    chosen = settings.get(f"{resource_path.lstrip('/')}/{http_method}") or settings.get("*/*")
    if not chosen or "throttlingRateLimit" not in chosen:
        return None
    return float(chosen["throttlingRateLimit"]), int(chosen.get("throttlingBurstLimit", 0))


def _invoke_permitted(function: Any, source_arn: str, account_id: str) -> bool:
    try:
        document = function.policy.get_policy()["Policy"]
    except Exception:  # moto raises when the function has no policy at all
        return False
    request = policy.Request(
        action="lambda:InvokeFunction",
        resource=function.function_arn,
        principal=policy.Principal.service("apigateway.amazonaws.com"),
        context={"aws:SourceArn": source_arn, "aws:SourceAccount": account_id},
    )
    return policy.evaluate([document], request) == policy.Decision.ALLOW


def _params(call: _Call) -> dict[str, dict[str, str]]:
    return {
        "path": dict(call.path_params),
        "querystring": {name: values[-1] for name, values in call.request.query.items()},
        "header": dict(call.request.headers),
    }


def _mapped_headers(call: _Call, selected: Any, payload: Any) -> dict[str, str]:
    """The integration response's ``responseParameters``, as headers.

    Only headers the method response declares are sent: AWS refuses any other mapping at ``PutIntegrationResponse``
    ("Invalid mapping expression"), moto stores it. A source that finds nothing (a missing body field) sends no
    header, as in AWS.
    """
    method_response = (call.method.method_responses or {}).get(selected.status_code)
    declared = (method_response.response_parameters or {}) if method_response is not None else {}
    headers = {}
    for target, source in (selected.response_parameters or {}).items():
        if target in declared and target.startswith(_METHOD_RESPONSE_HEADER):
            value = _mapping_value(str(source), payload, call.stage.variables or {})
            if value is not None:
                headers[target.removeprefix(_METHOD_RESPONSE_HEADER)] = value
    return headers


def _mapping_value(source: str, payload: Any, stage_variables: Mapping[str, str]) -> str | None:
    """A response mapping source's value: ``'static'``, ``integration.response.body[.json.path]`` (the Lambda's
    result or error object) or ``stageVariables.<name>``; None for what the emulator does not map (README)."""
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    if source == _RESPONSE_BODY or source.startswith(_RESPONSE_BODY + "."):
        value = payload
        for name, index in _JSON_PATH_STEP.findall(source[len(_RESPONSE_BODY) + 1 :]):
            if name and isinstance(value, dict):
                value = value.get(name)
            elif index and isinstance(value, list) and int(index) < len(value):
                value = value[int(index)]
            else:
                value = None
        return value if value is None or isinstance(value, str) else json.dumps(value)
    if source.startswith("stageVariables."):
        return stage_variables.get(source.removeprefix("stageVariables."))
    return None


def _access_value(context: Mapping[str, Any], dotted: str) -> str:
    """A `$context` variable's value for the access log; `-` when unset, as API Gateway writes it."""
    value: Any = context
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return "-"
    return str(value)


def _write_log(destination_arn: str, stream: str, message: str) -> None:
    from moto.logs.models import logs_backends

    parts = destination_arn.split(":")
    if len(parts) < 7 or parts[2] != "logs":
        return
    region, account, group = parts[3], parts[4], parts[6]
    backend = logs_backends[account][region]
    if group not in backend.groups:
        return  # AWS drops access logs for a missing group too
    backend.ensure_log_stream(group, stream)
    backend.put_log_events(group, stream, [{"timestamp": int(time.time() * 1000), "message": message}])


def parse_wsgi(environ: Mapping[str, Any], path: str) -> Request:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {
        key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    return Request(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=path or "/",
        headers=headers,
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        body=body,
        source_ip=environ.get("REMOTE_ADDR", ""),
        user_agent=headers.get("user-agent", ""),
    )
