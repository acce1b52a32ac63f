"""Access logs: one JSON line per request with the tenant, into a never-expiring log group."""

from __future__ import annotations

import json

from constructs_lib.observability import ACCESS_LOG_FORMAT
from tests.support.synth import only, ref, resources

ACCESS = "access-logs"


def test_stage_writes_json_access_logs_to_its_own_group(service):
    settings = only(service, "aws_api_gateway_stage")["access_log_settings"]
    assert settings["destination_arn"] == ref(service, "aws_cloudwatch_log_group", "arn", ACCESS)
    assert settings["format"] == ACCESS_LOG_FORMAT
    group = only(service, "aws_cloudwatch_log_group", ACCESS)
    assert group["name"] == "/aws/apigateway/kms-key-generator-v1-access"
    assert group["retention_in_days"] == 0


def test_access_log_format_names_tenant_key_and_outcome():
    fields = json.loads(ACCESS_LOG_FORMAT)
    assert fields["tenant"] == "$context.authorizer.tenant_id"
    assert fields["apiKeyId"] == "$context.identity.apiKeyId"
    for needed in (
        "requestId",
        "extendedRequestId",
        "sourceIp",
        "caller",
        "status",
        "responseLatency",
        "integrationLatency",
        "errorMessage",
    ):
        assert needed in fields


def test_account_cloudwatch_role_is_created_and_awaited_by_the_stage(service):
    account = only(service, "aws_api_gateway_account")
    assert account["cloudwatch_role_arn"] == ref(service, "aws_iam_role", "arn", ACCESS)
    assert only(service, "aws_api_gateway_stage")["depends_on"] == [
        ref(service, "aws_api_gateway_account", "id").removeprefix("${").removesuffix(".id}")
    ]
    trust = only(service, "aws_iam_role", ACCESS)["assume_role_policy"]
    assert '"Service" = "apigateway.amazonaws.com"' in trust


def test_access_log_groups_are_in_the_outputs(service):
    assert ref(service, "aws_cloudwatch_log_group", "name", ACCESS)[2:-1] in json.dumps(
        service["output"]["log_group_names"]
    )


def test_account_role_can_be_left_to_another_stack(variant):
    assert resources(variant.service, "aws_api_gateway_account") == {}
    assert "depends_on" not in only(variant.service, "aws_api_gateway_stage")
    assert "access_log_settings" in only(variant.service, "aws_api_gateway_stage")
