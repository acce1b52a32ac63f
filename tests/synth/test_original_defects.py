"""The six defects of the original Terraform modules, each pinned by a test on the synthesized JSON.

Each test fails on what the original did (noted per test) and passes on what we synthesize now. Defects 1
and 5 concern the API key, which has two owners depending on `rotation.enabled`: Terraform (static mode,
the `variant` synth) or the rotation Lambda (default); both are pinned. The deployed state is checked by
`tests/e2e/test_deploy.py`.
"""

from __future__ import annotations

import json

import pytest

from constructs_lib import api_contract
from constructs_lib.stacks.adoption import ORIGINAL_OUTPUT_NAMES as ORIGINAL_NAMES_KEPT
from local_aws.apigw.vtl import render
from tests.support.synth import only, ref, resources

# The original's outputs table (outputs.tf): seven terse outputs.
ORIGINAL_OUTPUTS = 7


def test_defect_1_static_api_key_is_attached_to_the_usage_plan(variant):
    # Original: an API key and a usage plan, but no aws_api_gateway_usage_plan_key joining them.
    stack = variant.service
    attachment = only(stack, "aws_api_gateway_usage_plan_key", "service-api-key")
    assert attachment["key_id"] == ref(stack, "aws_api_gateway_api_key", "id", "service-api-key")
    assert attachment["usage_plan_id"].startswith("${aws_api_gateway_usage_plan.")
    assert attachment["key_type"] == "API_KEY"


def test_defect_1_rotated_api_keys_join_the_usage_plan(service):
    # With rotation the Lambda creates keys; its USAGE_PLAN_IDS tell it which plan they join.
    assert resources(service, "aws_api_gateway_api_key") == {}
    variables = only(service, "aws_lambda_function", "api-key-rotation")["environment"]["variables"]
    assert (
        variables["USAGE_PLAN_IDS"] == '${join(" ", [' + ref(service, "aws_api_gateway_usage_plan", "id")[2:-1] + "])}"
    )


def test_defect_2_integration_has_the_mapping_template(service):
    # Original: the integration had no request_templates, so the Lambda got the raw body.
    integration = only(service, "aws_api_gateway_integration")
    template = integration["request_templates"]["application/json"]
    assert template == api_contract.REQUEST_TEMPLATE
    assert integration["passthrough_behavior"] == "NEVER"
    body = {
        "account": "123456789012",
        "region": "eu-west-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": "alias/app",
        "key_description": "app key",
    }
    assert json.loads(render(template, json.dumps(body))) == {
        "Account": "123456789012",
        "Region": "eu-west-1",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyAlias": "alias/app",
        "KeyDescription": "app key",
        "Caller": {"ApiKeyId": "", "TenantId": ""},  # from $context, which this rendering leaves empty
    }


def test_defect_3_outputs_are_many_and_all_described(service):
    # Original: seven outputs; the API's id, URL, key and SSM parameter were not among them.
    outputs = service["output"]
    assert len(outputs) > ORIGINAL_OUTPUTS
    undescribed = [name for name, output in outputs.items() if not output.get("description")]
    assert undescribed == []
    for needed in (
        "rest_api_id",
        "key_endpoint_url",
        "stage_name",
        "usage_plan_id",
        "api_key_secret_arn",
        "rotation_function_name",
        "ssm_parameter_name",
        "ssm_parameter_arn",
        "log_group_names",
        "log_group_arns",
        "lambda_function_name",
        "lambda_function_arn",
        "execution_role_name",
        "execution_role_arn",
        "ssm_kms_key_arn",
        "account_id",
        "client_certificate_id",
        "state_bucket",
        "state_lock_table",
    ):
        assert needed in outputs, needed


# The original modules' outputs, as their README (terraform-docs) listed them.
ORIGINAL_OUTPUT_NAMES = (
    "aws_caller_identity_current_account_id",
    "cloudwatch_log_group_arns",
    "execution_role_arn",
    "execution_role_name",
    "function_name",
    "lambda_arn",
    "ssm_kms_key_arn",
)


@pytest.mark.parametrize("name", ORIGINAL_OUTPUT_NAMES)
def test_every_original_output_name_is_kept_for_its_consumers(service, name):
    """A downstream `terraform_remote_state` reading an original name keeps working after adoption: the name
    is output with the value of its successor."""
    outputs = service["output"]
    assert name in outputs
    renamed = ORIGINAL_NAMES_KEPT.get(name)
    if renamed is not None:
        assert outputs[name]["value"] == outputs[renamed]["value"]
        assert outputs[name]["description"] == (
            f"Same as `{renamed}`; kept for consumers of the original Terraform modules"
        )


def test_defect_3_static_mode_outputs_the_api_key(variant):
    outputs = variant.service["output"]
    assert outputs["api_key_id"]["description"]
    assert outputs["api_key_value"]["sensitive"] is True


def test_defect_4_log_groups_never_expire(service):
    # Original: the log group had a retention period, so logs expired.
    log_groups = resources(service, "aws_cloudwatch_log_group")
    assert log_groups, "the service must create its log groups explicitly"
    assert {name: group["retention_in_days"] for name, group in log_groups.items()} == {name: 0 for name in log_groups}


def test_defect_5_static_ssm_parameter_references_the_live_api_key(variant):
    # Original: value = local.api_key, a literal from locals.tf.
    parameter = only(variant.service, "aws_ssm_parameter")
    assert parameter["type"] == "SecureString"
    assert parameter["value"] == ref(variant.service, "aws_api_gateway_api_key", "value", "service-api-key")
    assert "lifecycle" not in parameter
    assert "locals" not in variant.service


def test_defect_5_rotation_keeps_the_ssm_parameter_live(service):
    # With rotation the Lambda writes every new key to the parameter; Terraform ignores the value it set
    # at creation (a non-secret placeholder the first rotation replaces during the same apply).
    parameter = only(service, "aws_ssm_parameter")
    assert parameter["type"] == "SecureString"
    assert parameter["name"] == "/APIGateway/APIKeys/kms-key-generator"
    assert parameter["lifecycle"] == {"ignore_changes": ["value"]}
    rotation = only(service, "aws_lambda_function", "api-key-rotation")
    assert rotation["environment"]["variables"]["SSM_PARAMETER_NAME"] == ref(service, "aws_ssm_parameter", "name")


def test_defect_6_stage_has_a_client_certificate(service):
    # Original: the stage had no client_certificate_id.
    stage = only(service, "aws_api_gateway_stage")
    assert stage["client_certificate_id"] == ref(service, "aws_api_gateway_client_certificate", "id")
