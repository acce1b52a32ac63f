"""`api_gateway.UsagePlan`, `ApiKey` and `KeyServiceApi`, in a scratch stack."""

from __future__ import annotations

import pytest

from constructs_lib import api_contract
from tests.constructs.helpers import is_reference, one, resources


def _plan_props(**overrides):
    from constructs_lib.api_gateway import UsagePlanProps

    props = {
        "name": "demo-default",
        "rest_api_id": "a1b2c3d4e5",
        "stage_name": "v1",
        "throttle_rate_limit": 2.0,
        "throttle_burst_limit": 4,
        "quota_limit": 1000,
        "quota_period": "DAY",
    }
    return UsagePlanProps(**(props | overrides))


def _api_props(**overrides):
    from constructs_lib.api_gateway import KeyServiceApiProps

    props = {
        "name": "demo",
        "stage_name": "v1",
        "lambda_invoke_arn": "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn/invocations",
        "lambda_function_name": "demo",
    }
    return KeyServiceApiProps(**(props | overrides))


# --- usage plan and API key ----------------------------------------------------------------------------------


def test_usage_plan_throttles_and_meters_one_stage(stack, synth):
    from constructs_lib.api_gateway import UsagePlan

    UsagePlan(stack, "plan", _plan_props(quota_period="WEEK", quota_offset=1, method_throttles=(("/keys/POST", 1, 2),)))
    plan = one(synth(stack), "aws_api_gateway_usage_plan")
    assert list(resources(synth(stack), "aws_api_gateway_usage_plan")) == ["plan_usage-plan"]
    assert plan["name"] == "demo-default"
    assert plan["api_stages"] == [
        {"api_id": "a1b2c3d4e5", "stage": "v1", "throttle": [{"path": "/keys/POST", "rate_limit": 1, "burst_limit": 2}]}
    ]
    assert plan["throttle_settings"] == {"rate_limit": 2, "burst_limit": 4}
    assert plan["quota_settings"] == {"limit": 1000, "period": "WEEK", "offset": 1}


def test_add_api_key_attaches_the_key_under_the_keys_own_path(stack, synth):
    from constructs_lib.api_gateway import ApiKey, ApiKeyProps, UsagePlan

    plan = UsagePlan(stack, "plan", _plan_props())
    key = ApiKey(stack, "service-api-key", ApiKeyProps(name="demo-v1"))
    plan.add_api_key(key)
    document = synth(stack)
    plan_keys = resources(document, "aws_api_gateway_usage_plan_key")
    assert list(plan_keys) == ["service-api-key_usage-plan-key"]
    plan_key = plan_keys["service-api-key_usage-plan-key"]
    assert is_reference(plan_key["key_id"], "aws_api_gateway_api_key", "id")
    assert is_reference(plan_key["usage_plan_id"], "aws_api_gateway_usage_plan", "id")
    assert plan_key["key_type"] == "API_KEY"
    assert one(document, "aws_api_gateway_api_key")["enabled"] is True


def test_rejects_a_key_added_to_a_second_plan(stack):
    from constructs_lib.api_gateway import ApiKey, ApiKeyProps, UsagePlan

    first, second = UsagePlan(stack, "first", _plan_props()), UsagePlan(stack, "second", _plan_props())
    key = ApiKey(stack, "key", ApiKeyProps(name="demo-v1"))
    first.add_api_key(key)
    with pytest.raises(
        ValueError,
        match=r"^UsagePlan\.add_api_key: key test/key already belongs to usage plan "
        r"test/first$",
    ):
        second.add_api_key(key)


def test_rejects_bad_usage_plan_props_naming_each_prop(stack):
    from constructs_lib.api_gateway import UsagePlan

    with pytest.raises(ValueError) as raised:
        UsagePlan(
            stack,
            "plan",
            _plan_props(
                name="",
                throttle_rate_limit=0,
                throttle_burst_limit=-1,
                quota_limit=0,
                quota_period="YEAR",
                quota_offset=-1,
                method_throttles=(("keys", 0, 1),),
            ),
        )
    assert str(raised.value) == "\n".join(
        [
            "UsagePlan.name: must be 1-1024 characters, got ''",
            "UsagePlan.throttle_rate_limit: must be > 0, got 0",
            "UsagePlan.throttle_burst_limit: must be > 0, got -1",
            "UsagePlan.quota_limit: must be > 0, got 0",
            "UsagePlan.quota_period: must be one of DAY, WEEK, MONTH, got 'YEAR'",
            "UsagePlan.quota_offset: must be >= 0, got -1",
            "UsagePlan.method_throttles[0].path: must be a resource path and method, e.g. /keys/POST, got 'keys'",
            "UsagePlan.method_throttles[0].rate_limit: must be > 0, got 0",
        ]
    )
    assert stack.node.try_find_child("plan") is None


def test_rejects_an_api_key_without_a_name(stack):
    from constructs_lib.api_gateway import ApiKey, ApiKeyProps

    with pytest.raises(ValueError, match=r"^ApiKey\.name: must be 1-1024 characters, got ''$"):
        ApiKey(stack, "key", ApiKeyProps(name=""))


# --- the API ---------------------------------------------------------------------------------------------------


def test_api_serves_post_keys_through_the_lambda(stack, synth):
    from constructs_lib.api_gateway import KeyServiceApi

    KeyServiceApi(stack, "api", _api_props())
    document = synth(stack)
    assert one(document, "aws_api_gateway_rest_api")["api_key_source"] == "HEADER"
    assert one(document, "aws_api_gateway_resource")["path_part"] == api_contract.RESOURCE_PATH
    method = one(document, "aws_api_gateway_method")
    assert method["http_method"] == api_contract.HTTP_METHOD and method["api_key_required"] is True
    assert method["authorization"] == "NONE"
    integration = one(document, "aws_api_gateway_integration")
    assert integration["uri"] == _api_props().lambda_invoke_arn and integration["passthrough_behavior"] == "NEVER"
    statuses = {r["status_code"] for r in resources(document, "aws_api_gateway_method_response").values()}
    assert statuses == {api_contract.SUCCESS_STATUS, *(e.status_code for e in api_contract.ERROR_RESPONSES)}
    assert len(resources(document, "aws_api_gateway_integration_response")) == len(statuses)
    stage = one(document, "aws_api_gateway_stage")
    assert stage["stage_name"] == "v1"
    assert is_reference(stage["client_certificate_id"], "aws_api_gateway_client_certificate", "id")
    assert is_reference(stage["deployment_id"], "aws_api_gateway_deployment", "id")
    permission = one(document, "aws_lambda_permission")
    assert permission["function_name"] == "demo"
    assert permission["source_arn"].endswith(f"/*/{api_contract.HTTP_METHOD}/{api_contract.RESOURCE_PATH}")
    # Without method settings: no execution logs and no stage-wide settings.
    assert "aws_cloudwatch_log_group" not in document["resource"]
    assert "aws_api_gateway_method_settings" not in document["resource"]


def test_api_with_an_authorizer_and_execution_logs(stack, synth):
    from constructs_lib.api_gateway import AuthorizerProps, KeyServiceApi, MethodSettingsProps

    api = KeyServiceApi(
        stack,
        "api",
        _api_props(
            authorizer=AuthorizerProps(invoke_arn="arn:authorizer", function_name="demo-authorizer", ttl_seconds=60),
            method_settings=MethodSettingsProps(
                logging_level="ERROR", metrics_enabled=True, throttling_rate_limit=5, throttling_burst_limit=10
            ),
        ),
    )
    document = synth(stack)
    assert one(document, "aws_api_gateway_rest_api")["api_key_source"] == "AUTHORIZER"
    assert one(document, "aws_api_gateway_method")["authorization"] == "CUSTOM"
    assert one(document, "aws_api_gateway_authorizer")["authorizer_uri"] == "arn:authorizer"
    assert {p["function_name"] for p in resources(document, "aws_lambda_permission").values()} == {
        "demo",
        "demo-authorizer",
    }
    settings = one(document, "aws_api_gateway_method_settings")["settings"]
    assert settings["logging_level"] == "ERROR" and settings["data_trace_enabled"] is False
    assert one(document, "aws_cloudwatch_log_group")["name"].startswith("API-Gateway-Execution-Logs_")
    assert api.execution_log_group is not None


def test_rejects_bad_api_props_naming_each_prop(stack):
    from constructs_lib.api_gateway import AuthorizerProps, KeyServiceApi, MethodSettingsProps

    with pytest.raises(ValueError) as raised:
        KeyServiceApi(
            stack,
            "api",
            _api_props(
                stage_name="v-1",
                allowed_source_cidrs=("10.0.0.1/8",),
                allowed_vpc_endpoint_ids=("vpce-1",),
                authorizer=AuthorizerProps(invoke_arn="arn:authorizer", function_name="a", ttl_seconds=7200),
                method_settings=MethodSettingsProps(
                    logging_level="DEBUG", metrics_enabled=True, throttling_rate_limit=0, throttling_burst_limit=10
                ),
            ),
        )
    assert str(raised.value) == "\n".join(
        [
            "KeyServiceApi.stage_name: must be 1-128 letters, digits or underscores, got 'v-1'",
            "KeyServiceApi.allowed_source_cidrs[0]: must be a CIDR block such as 10.0.0.0/8 (host bits zero), "
            "got '10.0.0.1/8'",
            "KeyServiceApi.allowed_vpc_endpoint_ids[0]: must be a VPC endpoint id such as vpce-0123456789abcdef0, "
            "got 'vpce-1'",
            "KeyServiceApi.authorizer.ttl_seconds: must be between 0 and 3600, got 7200",
            "KeyServiceApi.method_settings.logging_level: must be one of INFO, ERROR, OFF, got 'DEBUG'",
            "KeyServiceApi.method_settings.throttling_rate_limit: must be > 0, got 0",
        ]
    )
