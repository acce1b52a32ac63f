"""The REST API: method, integration, responses, deployment, stage, usage plans, keys, permission."""

from __future__ import annotations

import json

from constructs_lib import api_contract
from tests.support.synth import only, ref, resources


def test_api_is_regional_and_reads_the_key_from_the_header(service):
    api = only(service, "aws_api_gateway_rest_api")
    assert api["endpoint_configuration"] == {"types": ["REGIONAL"]}
    assert api["api_key_source"] == "HEADER"


def test_post_keys_requires_an_api_key_and_a_valid_body(service):
    method = only(service, "aws_api_gateway_method")
    assert method["http_method"] == "POST"
    assert method["api_key_required"] is True
    assert method["request_validator_id"] == ref(service, "aws_api_gateway_request_validator", "id")
    assert method["request_models"] == {"application/json": ref(service, "aws_api_gateway_model", "name")}
    assert only(service, "aws_api_gateway_resource")["path_part"] == "keys"
    assert only(service, "aws_api_gateway_request_validator")["validate_request_body"] is True


def test_request_model_is_the_contract_schema(service):
    model = only(service, "aws_api_gateway_model")
    assert json.loads(model["schema"]) == api_contract.REQUEST_MODEL_SCHEMA


def test_integration_is_non_proxy_lambda(service):
    integration = only(service, "aws_api_gateway_integration")
    assert integration["type"] == "AWS"
    assert integration["integration_http_method"] == "POST"
    assert integration["uri"] == ref(service, "aws_lambda_function", "invoke_arn", "key-generator")


def test_every_status_has_a_method_and_integration_response(service):
    method_statuses = sorted(r["status_code"] for r in resources(service, "aws_api_gateway_method_response").values())
    assert method_statuses == ["201", "400", "403", "409", "429", "500", "503"]
    patterns = {
        r["status_code"]: (r.get("selection_pattern"), r["response_templates"]["application/json"])
        for r in resources(service, "aws_api_gateway_integration_response").values()
    }
    expected = {e.status_code: (e.selection_pattern, e.response_template) for e in api_contract.ERROR_RESPONSES}
    # Integration responses reference their method response, so the status comes as a reference.
    by_status = {
        service["resource"]["aws_api_gateway_method_response"][ref_name(code)]["status_code"]: value
        for code, value in patterns.items()
    }
    assert by_status["201"] == (None, api_contract.SUCCESS_RESPONSE_TEMPLATE)
    assert {k: v for k, v in by_status.items() if k != "201"} == expected


def ref_name(reference: str) -> str:
    """`${aws_api_gateway_method_response.NAME.status_code}` -> NAME."""
    return reference.removeprefix("${").split(".")[1]


def test_deployment_is_replaced_before_the_old_one_goes(service):
    assert only(service, "aws_api_gateway_deployment")["lifecycle"] == {"create_before_destroy": True}


def test_deployment_trigger_hashes_the_contract_and_access_rules(service, variant):
    contract = only(service, "aws_api_gateway_deployment")["triggers"]["contract"]
    assert len(contract) == 64 and int(contract, 16) >= 0
    # The variant differs only in access rules, not the contract: the hash must still differ.
    assert only(variant.service, "aws_api_gateway_deployment")["triggers"]["contract"] != contract


def test_deployment_trigger_covers_every_piece_it_snapshots(service):
    trigger = only(service, "aws_api_gateway_deployment")["triggers"]["resources"]
    assert trigger.startswith("${sha1(jsonencode(")
    for rtype in (
        "aws_api_gateway_resource",
        "aws_api_gateway_model",
        "aws_api_gateway_request_validator",
        "aws_api_gateway_method",
        "aws_api_gateway_integration",
        "aws_api_gateway_rest_api_policy",
    ):
        assert ref(service, rtype, "id").removeprefix("${").removesuffix("}") in trigger, rtype
    for name in resources(service, "aws_api_gateway_integration_response"):
        assert f"aws_api_gateway_integration_response.{name}.id" in trigger


def test_stage_serves_the_deployment(service):
    stage = only(service, "aws_api_gateway_stage")
    assert stage["stage_name"] == "v1"
    assert stage["deployment_id"] == ref(service, "aws_api_gateway_deployment", "id")


def test_usage_plan_has_throttle_and_quota_on_the_stage(service):
    plan = only(service, "aws_api_gateway_usage_plan")
    assert plan["name"] == "kms-key-generator-default"
    assert plan["api_stages"] == [
        {
            "api_id": ref(service, "aws_api_gateway_rest_api", "id"),
            "stage": ref(service, "aws_api_gateway_stage", "stage_name"),
        }
    ]
    # Below the stage's 5 requests/s and burst 10: the per-key limit bites before the stage's.
    assert plan["throttle_settings"] == {"rate_limit": 2, "burst_limit": 4}
    assert plan["quota_settings"] == {"limit": 1000, "period": "DAY", "offset": 0}


def test_service_key_joins_the_configured_plan_among_several(variant):
    stack = variant.service
    plans = resources(stack, "aws_api_gateway_usage_plan")
    by_name = {plan["name"]: name for name, plan in plans.items()}
    assert sorted(by_name) == ["keys-variant-general", "keys-variant-unlimited"]
    attachment = only(stack, "aws_api_gateway_usage_plan_key", "service-api-key")
    assert attachment["usage_plan_id"] == "${aws_api_gateway_usage_plan." + by_name["keys-variant-general"] + ".id}"


def test_api_key_value_is_generated_by_aws_and_never_in_the_json(variant):
    key = only(variant.service, "aws_api_gateway_api_key", "service-api-key")
    assert key["enabled"] is True
    assert "value" not in key


def test_api_key_value_output_is_sensitive(variant):
    outputs = variant.service["output"]
    assert outputs["api_key_value"]["sensitive"] is True
    plain = [name for name, o in outputs.items() if "api_key.value" in json.dumps(o) and not o.get("sensitive")]
    assert plain == []


def test_lambda_permission_is_scoped_to_this_method(service):
    permission = only(service, "aws_lambda_permission", "api_")
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["source_arn"] == ref(service, "aws_api_gateway_rest_api", "execution_arn") + "/*/POST/keys"
    assert permission["function_name"] == ref(service, "aws_lambda_function", "function_name", "key-generator")


def test_resource_policy_allows_configured_cidrs(service):
    policy = only(service, "aws_api_gateway_rest_api_policy")["policy"]
    assert '"NotIpAddress" = {"aws:SourceIp" = ["0.0.0.0/0", "::/0"]}' in policy
    assert "aws:SourceVpce" not in policy


def test_resource_policy_restricts_to_vpc_endpoints_when_configured(variant):
    policy = only(variant.service, "aws_api_gateway_rest_api_policy")["policy"]
    assert '"StringNotEquals" = {"aws:SourceVpce" = ["vpce-0123456789abcdef0"]}' in policy
    assert '"NotIpAddress" = {"aws:VpcSourceIp" = ["10.0.0.0/8"]}' in policy


# --- VPC endpoints make the API private (issue 14, point 9) -------------------------------------------------------


def test_vpc_endpoints_make_the_api_private_and_attached_to_them(variant):
    api = only(variant.service, "aws_api_gateway_rest_api")
    assert api["endpoint_configuration"] == {"types": ["PRIVATE"], "vpc_endpoint_ids": ["vpce-0123456789abcdef0"]}


def test_no_synthesized_api_keys_its_policy_on_an_endpoint_it_cannot_be_reached_through(synths):
    """`aws:SourceVpce` is only set on requests to a private API: a policy requiring it on a REGIONAL API would
    deny every request. Every synth keeps the policy's endpoints and the API's endpoints the same."""
    for name, synth in synths.items():
        api = only(synth.service, "aws_api_gateway_rest_api")
        policy = only(synth.service, "aws_api_gateway_rest_api_policy")["policy"]
        endpoints = api["endpoint_configuration"].get("vpc_endpoint_ids", [])
        if "aws:SourceVpce" in policy:
            assert api["endpoint_configuration"]["types"] == ["PRIVATE"], name
            assert f'"aws:SourceVpce" = {json.dumps(endpoints)}' in policy, name
        else:
            assert api["endpoint_configuration"] == {"types": ["REGIONAL"]}, name


def test_private_api_deployment_is_replaced_when_its_endpoints_change():
    base = dict(allowed_source_cidrs=("10.0.0.0/8",), authorizer_ttl=None, disable_execute_api_endpoint=False)
    one = api_contract.deployment_hash(allowed_vpc_endpoint_ids=("vpce-0123456789abcdef0",), **base)
    other = api_contract.deployment_hash(allowed_vpc_endpoint_ids=("vpce-0fedcba9876543210",), **base)
    assert one != other
