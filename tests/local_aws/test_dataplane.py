"""API Gateway's data plane in the emulator, without Terraform: APIs built with boto3, requests over HTTP.

One in-process emulator serves the module; each test builds the small API it needs. The functions are real
Python Lambdas run by the emulator's runner, so an invocation shows up as a START line in its log group.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from local_aws.apigw import dataplane
from tests.support.emulator import client
from tests.support.http import send, user_request_url

pytestmark = pytest.mark.seconds(22)

REGION = "us-east-1"
ACCOUNT = "123456789012"

FUNCTIONS = """
import json, time

def backend(event, context):
    body = event["body"]
    if body.get("action") == "fail":
        raise Exception(body["message"])
    if body.get("action") == "sleep":
        time.sleep(body["seconds"])
    return {"event": event}

def authorizer(event, context):
    token = event["headers"].get("authorization", "")
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "broken":
        raise Exception("boom")
    effect = "Deny" if token == "deny" else "Allow"
    output = {
        "principalId": "caller",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": effect, "Action": "execute-api:Invoke", "Resource": event["methodArn"]}]},
        "context": {"tenant_id": "tenant-" + token.partition(":")[2], "level": 3},
    }
    if token.startswith("key:"):
        output["usageIdentifierKey"] = token.partition(":")[2]
    return output
"""

TEMPLATE = """{
  "body": $input.json('$'),
  "tenant": "$context.authorizer.tenant_id", "level": "$context.authorizer.level",
  "apiKeyId": "$context.identity.apiKeyId", "sourceIp": "$context.identity.sourceIp", "stage": "$context.stage"
}"""
SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "required": ["action"],
    "properties": {"action": {"type": "string"}},
}


@pytest.fixture(scope="module")
def functions(emulator):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("functions.py", FUNCTIONS)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = client(emulator, "iam").create_role(RoleName="dataplane", AssumeRolePolicyDocument=json.dumps(trust))
    lambdas = client(emulator, "lambda")
    arns = {}
    for name in ("backend", "authorizer"):
        arns[name] = lambdas.create_function(
            FunctionName=f"dataplane-{name}",
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler=f"functions.{name}",
            Code={"ZipFile": archive.getvalue()},
            Timeout=10,
        )["FunctionArn"]
    return arns


def invocations(emulator, function_arn: str) -> int:
    logs = client(emulator, "logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function_arn.split(':')[-1]}")["events"]
    except logs.exceptions.ResourceNotFoundException:  # the runner creates the group on the first invocation
        return 0
    return sum(event["message"].startswith("START RequestId") for event in events)


class Api:
    """A REST API with `POST /items` integrated with the backend function, deployed to stage `test`."""

    def __init__(
        self,
        emulator,
        functions,
        *,
        key_source="HEADER",
        authorizer_ttl=None,
        permission=True,
        timeout_ms=None,
        policy=None,
    ):
        self.emulator = emulator
        self.apigw = apigw = client(emulator, "apigateway")
        api = apigw.create_rest_api(name="dataplane", apiKeySource=key_source, **({"policy": policy} if policy else {}))
        self.id = api["id"]
        resource = apigw.create_resource(restApiId=self.id, parentId=api["rootResourceId"], pathPart="items")
        self.resource_id = resource["id"]
        apigw.create_model(restApiId=self.id, name="Item", contentType="application/json", schema=json.dumps(SCHEMA))
        validator = apigw.create_request_validator(restApiId=self.id, name="body", validateRequestBody=True)
        method = {"authorizationType": "NONE"}
        if authorizer_ttl is not None:
            uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{functions['authorizer']}/invocations"
            self.authorizer = apigw.create_authorizer(
                restApiId=self.id,
                name="request",
                type="REQUEST",
                authorizerUri=uri,
                identitySource="method.request.header.Authorization",
                authorizerResultTtlInSeconds=authorizer_ttl,
            )
            method = {"authorizationType": "CUSTOM", "authorizerId": self.authorizer["id"]}
            client(emulator, "lambda").add_permission(
                FunctionName=functions["authorizer"],
                StatementId=f"authorizer-{self.id}",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.id}/authorizers/{self.authorizer['id']}",
            )
        apigw.put_method(
            restApiId=self.id,
            resourceId=self.resource_id,
            httpMethod="POST",
            apiKeyRequired=True,
            requestModels={"application/json": "Item"},
            requestValidatorId=validator["id"],
            **method,
        )
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{functions['backend']}/invocations"
        apigw.put_integration(
            restApiId=self.id,
            resourceId=self.resource_id,
            httpMethod="POST",
            type="AWS",
            integrationHttpMethod="POST",
            uri=uri,
            passthroughBehavior="NEVER",
            requestTemplates={"application/json": TEMPLATE},
            **({"timeoutInMillis": timeout_ms} if timeout_ms else {}),
        )
        for status, pattern, template in [
            ("200", None, "$input.json('$.event')"),
            ("400", r"(?s)^Bad: .*", "{\"message\": $input.json('$.errorMessage')}"),
            ("500", r"(?s)^(?!Bad: ).+", '{"message": "Internal server error"}'),
        ]:
            apigw.put_method_response(
                restApiId=self.id, resourceId=self.resource_id, httpMethod="POST", statusCode=status
            )
            apigw.put_integration_response(
                restApiId=self.id,
                resourceId=self.resource_id,
                httpMethod="POST",
                statusCode=status,
                responseTemplates={"application/json": template},
                **({"selectionPattern": pattern} if pattern else {}),
            )
        if permission:
            client(emulator, "lambda").add_permission(
                FunctionName=functions["backend"],
                StatementId=f"api-{self.id}",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.id}/*/POST/items",
            )
        apigw.create_deployment(restApiId=self.id, stageName="test")
        self.url = user_request_url(emulator.endpoint, self.id, "test", "/items")

    def key(self, *, enabled=True, plan=True, throttle=None, quota=None, method_throttles=None) -> dict:
        key = self.apigw.create_api_key(name=f"key-{self.id}", enabled=enabled)
        if plan:
            stage = {"apiId": self.id, "stage": "test", **({"throttle": method_throttles} if method_throttles else {})}
            usage_plan = self.apigw.create_usage_plan(
                name=f"plan-{key['id']}",
                apiStages=[stage],
                **({"throttle": throttle} if throttle else {}),
                **({"quota": quota} if quota else {}),
            )
            self.apigw.create_usage_plan_key(usagePlanId=usage_plan["id"], keyId=key["id"], keyType="API_KEY")
            key["planId"] = usage_plan["id"]
        return key


# --- pure parts ----------------------------------------------------------------------------------------------


def _snapshot(paths: dict[str, list[str]]) -> dataplane.Snapshot:
    class Resource:
        def __init__(self, path, methods):
            self.resource_methods = {m: f"{m} {path}" for m in methods}

    resources = {str(i): Resource(path, methods) for i, (path, methods) in enumerate(paths.items())}
    ids = {path: str(i) for i, path in enumerate(paths)}
    return dataplane.Snapshot(
        resources=resources,
        paths={rid: path for path, rid in ids.items()},
        authorizers={},
        models={},
        validators={},
        policy=None,
        api_key_source="HEADER",
        execute_api_disabled=False,
    )


def test_route_matching_prefers_literal_segments_then_parameters_then_greedy_paths():
    snapshot = _snapshot(
        {"/": ["GET"], "/items": ["POST"], "/items/{id}": ["GET"], "/items/special": ["GET"], "/{proxy+}": ["ANY"]}
    )
    assert dataplane.match_route(snapshot, "/items/special", "GET")[:2] == ("/items/special", "GET /items/special")
    assert dataplane.match_route(snapshot, "/items/42", "GET") == ("/items/{id}", "GET /items/{id}", {"id": "42"})
    assert dataplane.match_route(snapshot, "/a/b/c", "DELETE") == ("/{proxy+}", "ANY /{proxy+}", {"proxy": "a/b/c"})
    assert dataplane.match_route(snapshot, "/", "GET")[0] == "/"


@pytest.mark.parametrize("path, method", [("/items", "GET"), ("/nothing", "POST"), ("/items/1/2", "GET")])
def test_an_unmatched_route_is_missing_authentication_token(path, method):
    snapshot = _snapshot({"/items": ["POST"], "/items/{id}": ["GET"]})
    with pytest.raises(dataplane.GatewayError) as raised:
        dataplane.match_route(snapshot, path, method)
    assert (raised.value.status, raised.value.message) == (403, "Missing Authentication Token")


def test_authorizer_cache_keeps_a_decision_for_its_ttl_only():
    cache = dataplane.AuthorizerCache()
    decision = dataplane.AuthorizerDecision({"Statement": []}, {}, "p", None)
    cache.put(("api", "token"), decision, ttl=5, now=100.0)
    assert cache.get(("api", "token"), now=104.9) is decision
    assert cache.get(("api", "other"), now=101.0) is None
    assert cache.get(("api", "token"), now=105.0) is None


def test_authorizer_cache_keeps_nothing_with_ttl_zero():
    cache = dataplane.AuthorizerCache()
    cache.put(("k",), dataplane.AuthorizerDecision({}, {}, "p", None), ttl=0, now=1.0)
    assert cache.get(("k",), now=1.0) is None


# --- over HTTP -----------------------------------------------------------------------------------------------


def test_a_request_reaches_the_function_through_the_template_and_the_default_response(emulator, functions):
    api = Api(emulator, functions)
    key = api.key()
    answer = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    assert answer.status == 200, answer
    assert answer.json == {
        "body": {"action": "echo"},
        "tenant": "",
        "level": "",
        "apiKeyId": key["id"],
        "sourceIp": "127.0.0.1",
        "stage": "test",
    }
    assert answer.headers["x-amzn-requestid"]


def test_a_function_error_is_mapped_by_its_selection_pattern(emulator, functions):
    api = Api(emulator, functions)
    key = api.key()
    bad = send(api.url, {"action": "fail", "message": "Bad: no"}, headers={"x-api-key": key["value"]})
    assert (bad.status, bad.json) == (400, {"message": "Bad: no"})
    other = send(api.url, {"action": "fail", "message": "arn:aws:secret details"}, headers={"x-api-key": key["value"]})
    assert (other.status, other.json) == (500, {"message": "Internal server error"})


def test_the_stage_serves_its_deployment_not_later_changes(emulator, functions):
    api = Api(emulator, functions)
    key = api.key()
    api.apigw.update_integration(
        restApiId=api.id,
        resourceId=api.resource_id,
        httpMethod="POST",
        patchOperations=[
            {"op": "replace", "path": "/requestTemplates/application~1json", "value": '{"body": {"changed": 1}}'}
        ],
    )
    before = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    assert before.json["body"] == {"action": "echo"}  # still the deployed template
    api.apigw.create_deployment(restApiId=api.id, stageName="test")
    after = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    assert after.json == {"body": {"changed": 1}}


def test_without_an_invoke_permission_the_integration_fails_with_500(emulator, functions):
    api = Api(emulator, functions, permission=False)
    key = api.key()
    before = invocations(emulator, functions["backend"])
    answer = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    assert (answer.status, answer.json) == (500, {"message": "Internal server error"})
    assert invocations(emulator, functions["backend"]) == before


def test_an_integration_past_its_timeout_is_504(emulator, functions):
    api = Api(emulator, functions, timeout_ms=50)
    key = api.key()
    answer = send(api.url, {"action": "sleep", "seconds": 3}, headers={"x-api-key": key["value"]})
    assert (answer.status, answer.json) == (504, {"message": "Endpoint request timed out"})


def test_disabled_execute_api_endpoint_is_forbidden_after_a_deployment(emulator, functions):
    api = Api(emulator, functions)
    key = api.key()
    api.apigw.update_rest_api(
        restApiId=api.id, patchOperations=[{"op": "replace", "path": "/disableExecuteApiEndpoint", "value": "true"}]
    )
    assert send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]}).status == 200
    api.apigw.create_deployment(restApiId=api.id, stageName="test")
    answer = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    assert (answer.status, answer.json) == (403, {"message": "Forbidden"})


def test_an_unknown_stage_is_forbidden(emulator, functions):
    api = Api(emulator, functions)
    answer = send(user_request_url(emulator.endpoint, api.id, "nostage", "/items"), {"action": "echo"})
    assert (answer.status, answer.json) == (403, {"message": "Forbidden"})


def test_per_method_plan_throttle_overrides_the_plan_and_burst_zero_refuses(emulator, functions):
    api = Api(emulator, functions)
    key = api.key(
        throttle={"rateLimit": 100, "burstLimit": 100},
        method_throttles={"/items/POST": {"rateLimit": 0, "burstLimit": 0}},
    )
    answer = send(api.url, {}, headers={"x-api-key": key["value"]})
    assert (answer.status, answer.json) == (429, {"message": "Too Many Requests"})
    roomy = api.key(throttle={"rateLimit": 100, "burstLimit": 100})
    assert send(api.url, {}, headers={"x-api-key": roomy["value"]}).status == 400


def test_quota_counts_admitted_requests_and_refuses_the_next(emulator, functions):
    api = Api(emulator, functions)
    key = api.key(quota={"limit": 2, "period": "MONTH"})
    statuses = [send(api.url, {}, headers={"x-api-key": key["value"]}).status for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_authorizer_needs_its_identity_source_and_is_not_invoked_without_it(emulator, functions):
    api = Api(emulator, functions, key_source="AUTHORIZER", authorizer_ttl=0)
    before = invocations(emulator, functions["authorizer"])
    answer = send(api.url, {"action": "echo"})
    assert (answer.status, answer.json) == (401, {"message": "Unauthorized"})
    assert invocations(emulator, functions["authorizer"]) == before


@pytest.mark.parametrize(
    "token, status, message",
    [
        ("unauthorized", 401, "Unauthorized"),
        ("deny", 403, "User is not authorized to access this resource with an explicit deny"),
        ("broken", 500, None),
        ("allow-without-key", 403, "Forbidden"),  # key source AUTHORIZER and no usageIdentifierKey
    ],
)
def test_authorizer_decisions_map_to_statuses(emulator, functions, token, status, message):
    api = Api(emulator, functions, key_source="AUTHORIZER", authorizer_ttl=0)
    answer = send(api.url, {"action": "echo"}, headers={"Authorization": token})
    assert (answer.status, answer.json) == (status, {"message": message})


def test_authorizer_allow_picks_the_usage_plan_and_passes_its_context_on(emulator, functions):
    api = Api(emulator, functions, key_source="AUTHORIZER", authorizer_ttl=0)
    key = api.key()
    answer = send(
        api.url,
        {"action": "echo"},
        headers={"Authorization": f"key:{key['value']}", "x-api-key": "ignored-in-authorizer-mode"},
    )
    assert answer.status == 200, answer
    assert (answer.json["tenant"], answer.json["level"], answer.json["apiKeyId"]) == (
        f"tenant-{key['value']}",
        "3",
        key["id"],
    )


def test_authorizer_decision_is_cached_per_identity_for_its_ttl(emulator, functions):
    api = Api(emulator, functions, key_source="AUTHORIZER", authorizer_ttl=300)
    key = api.key()
    before = invocations(emulator, functions["authorizer"])
    for _ in range(3):
        assert send(api.url, {"action": "echo"}, headers={"Authorization": f"key:{key['value']}"}).status == 200
    assert invocations(emulator, functions["authorizer"]) == before + 1
    send(api.url, {"action": "echo"}, headers={"Authorization": "deny"})
    assert invocations(emulator, functions["authorizer"]) == before + 2


def test_resource_policy_without_an_authorizer_needs_an_explicit_allow(emulator, functions):
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "execute-api:Invoke",
                    "Resource": "execute-api:/*/GET/*",
                }
            ],
        }
    )
    api = Api(emulator, functions, policy=policy)
    key = api.key()
    answer = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api.id}/test/POST/items"
    assert (answer.status, answer.json) == (
        403,
        {"message": f"User: anonymous is not authorized to perform: execute-api:Invoke on resource: {arn}"},
    )


def test_custom_domain_base_path_mapping_routes_to_its_stage(emulator, functions):
    api = Api(emulator, functions)
    key = api.key()
    api.apigw.create_domain_name(
        domainName="api.example.test",
        regionalCertificateArn="arn:aws:acm:x",
        endpointConfiguration={"types": ["REGIONAL"]},
    )
    api.apigw.create_base_path_mapping(domainName="api.example.test", restApiId=api.id, stage="test", basePath="v9")
    answer = send(
        f"{emulator.endpoint}/v9/items",
        {"action": "echo"},
        headers={"x-api-key": key["value"], "Host": "api.example.test"},
    )
    assert answer.status == 200, answer
    missing = send(
        f"{emulator.endpoint}/v8/items",
        {"action": "echo"},
        headers={"x-api-key": key["value"], "Host": "api.example.test"},
    )
    assert (missing.status, missing.json) == (403, {"message": "Forbidden"})


def test_integration_response_parameters_set_the_headers_the_method_response_declares(emulator, functions):
    api = Api(emulator, functions)
    key = api.key()
    method = {"restApiId": api.id, "resourceId": api.resource_id, "httpMethod": "POST"}
    for status, pattern, template, declared, mapped in [
        (
            "200",
            None,
            "$input.json('$.event')",
            ["X-Stage", "X-Flavour", "X-Missing"],
            {
                "X-Stage": "integration.response.body.event.stage",  # the Lambda's result, not the mapped body
                "X-Flavour": "stageVariables.flavour",
                "X-Missing": "integration.response.body.event.nothing",
                "X-Undeclared": "'never sent'",
            },
        ),
        (
            "400",
            r"(?s)^Bad: .*",
            "{\"message\": $input.json('$.errorMessage')}",
            ["Retry-After", "X-Error-Type"],
            {
                "Retry-After": "'1'",
                "X-Error-Type": "integration.response.body.errorType",  # the Lambda's error object
            },
        ),
    ]:
        api.apigw.put_method_response(
            **method,
            statusCode=status,
            responseParameters={f"method.response.header.{h}": False for h in declared},
        )
        api.apigw.put_integration_response(
            **method,
            statusCode=status,
            responseTemplates={"application/json": template},
            responseParameters={f"method.response.header.{h}": source for h, source in mapped.items()},
            **({"selectionPattern": pattern} if pattern else {}),
        )
    api.apigw.create_deployment(restApiId=api.id, stageName="test")
    api.apigw.update_stage(
        restApiId=api.id,
        stageName="test",
        patchOperations=[{"op": "replace", "path": "/variables/flavour", "value": "mint"}],
    )
    ok = send(api.url, {"action": "echo"}, headers={"x-api-key": key["value"]})
    assert ok.status == 200, ok
    assert (ok.headers["x-stage"], ok.headers["x-flavour"]) == ("test", "mint")
    assert "x-missing" not in ok.headers and "x-undeclared" not in ok.headers
    bad = send(api.url, {"action": "fail", "message": "Bad: slow down"}, headers={"x-api-key": key["value"]})
    assert (bad.status, bad.json) == (400, {"message": "Bad: slow down"})
    assert (bad.headers["retry-after"], bad.headers["x-error-type"]) == ("1", "Exception")
