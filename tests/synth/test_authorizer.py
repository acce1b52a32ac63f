"""Authorizer mode: bearer tokens checked against hashed entries; API Gateway meters the tenant's key."""

from __future__ import annotations

from tests.support.synth import only, ref, resources

AUTHORIZER = "token-authorizer"


def test_header_mode_has_no_authorizer(service):
    assert only(service, "aws_api_gateway_rest_api")["api_key_source"] == "HEADER"
    assert only(service, "aws_api_gateway_method")["authorization"] == "NONE"
    assert resources(service, "aws_api_gateway_authorizer") == {}


def test_api_takes_keys_from_the_authorizer(variant):
    stack = variant.service
    assert only(stack, "aws_api_gateway_rest_api")["api_key_source"] == "AUTHORIZER"
    method = only(stack, "aws_api_gateway_method")
    assert method["authorization"] == "CUSTOM"
    assert method["authorizer_id"] == ref(stack, "aws_api_gateway_authorizer", "id")
    assert method["api_key_required"] is True


def test_request_authorizer_reads_the_authorization_header_and_caches(variant):
    stack = variant.service
    authorizer = only(stack, "aws_api_gateway_authorizer")
    assert authorizer["type"] == "REQUEST"
    assert authorizer["identity_source"] == "method.request.header.Authorization"
    assert authorizer["authorizer_result_ttl_in_seconds"] == 30
    assert authorizer["authorizer_uri"] == ref(stack, "aws_lambda_function", "invoke_arn", AUTHORIZER)
    permission = only(stack, "aws_lambda_permission", "api_authorizer")
    assert permission["source_arn"] == (
        ref(stack, "aws_api_gateway_rest_api", "execution_arn")
        + "/authorizers/"
        + ref(stack, "aws_api_gateway_authorizer", "id")
    )


def test_tokens_table_stores_hashes_encrypted_with_pitr(variant):
    stack = variant.service
    table = only(stack, "aws_dynamodb_table", AUTHORIZER)
    assert table["name"] == "keys-variant-tokens"
    assert table["hash_key"] == "token_hash"
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["server_side_encryption"] == {
        "enabled": True,
        "kms_key_arn": ref(stack, "aws_kms_key", "arn", AUTHORIZER),
    }


def test_authorizer_may_only_read_its_table(variant):
    stack = variant.service
    function = only(stack, "aws_lambda_function", AUTHORIZER)
    assert function["environment"]["variables"] == {
        "TOKENS_TABLE": ref(stack, "aws_dynamodb_table", "name", AUTHORIZER)
    }
    policy = only(stack, "aws_iam_role_policy", AUTHORIZER)["policy"]
    assert '"Action" = ["dynamodb:GetItem"]' in policy
    assert "dynamodb:Scan" not in policy and "dynamodb:*" not in policy
    group = only(stack, "aws_cloudwatch_log_group", AUTHORIZER)
    assert group["retention_in_days"] == 0
