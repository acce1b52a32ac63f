"""The bearer-token authorizer against a moto DynamoDB table, with events shaped as API Gateway sends them to a
REQUEST authorizer. Every test also checks, through `logs`, that no log line holds a token or an API key value.
"""

import json

import boto3
import pytest

from tests.support.lambdas import load_handler

handler = load_handler("token_authorizer", "token_authorizer_handler")

TABLE = "kms-key-generator-tokens"
REGION = "us-east-1"  # tests/lambda/conftest.py sets it as AWS_DEFAULT_REGION
STAGE_ARN = f"arn:aws:execute-api:{REGION}:123456789012:a1b2c3d4e5/prod"
METHOD_ARN = f"{STAGE_ARN}/POST/keys"
TOKEN = "tenant-A_token-" + "Zq9" * 10  # 45 characters of urlsafe base64, like an issued token
OTHER_TOKEN = "unknown-token_" + "xY7" * 10
API_KEY_VALUE = "apikeyvalue" + "K" * 29
API_KEY_ID = "k1a2b3c4d5"
TENANT = "acme"


@pytest.fixture(autouse=True)
def authorizer_env(monkeypatch):
    """The table's name, and a fresh container (no cached client) for every test; the handler's session is kept,
    like the tests' own (see `_TEST_SESSION`)."""
    monkeypatch.setenv("TOKENS_TABLE", TABLE)
    handler._dynamodb.cache_clear()
    yield
    handler._dynamodb.cache_clear()


# Loading botocore's service models into a new session per test would be most of this module's time; the session
# holds nothing a test could leak (conftest's dummy credentials, a fixed region).
_TEST_SESSION = boto3.session.Session(region_name=REGION)


@pytest.fixture
def table(aws):
    """The tokens table, created as the stack would (hash key `token_hash`), and a client on it."""
    dynamodb = _TEST_SESSION.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "token_hash", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "token_hash", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


@pytest.fixture
def logs(capsys):
    """The handler's log lines, parsed; after the test, proof that none mentions a secret."""
    seen = []

    def read():
        seen.append(capsys.readouterr().out)
        return [json.loads(line) for line in seen[-1].splitlines()]

    yield read
    read()
    for secret in (TOKEN, OTHER_TOKEN, API_KEY_VALUE):
        assert secret not in "".join(seen)


def store(dynamodb, token=TOKEN, enabled=True, **overrides):
    item = {
        "token_hash": {"S": handler.token_hash(token)},
        "tenant_id": {"S": TENANT},
        "api_key_id": {"S": API_KEY_ID},
        "api_key_value": {"S": API_KEY_VALUE},
        "enabled": None if enabled is None else {"BOOL": enabled},
        "created": {"S": "2025-01-01T00:00:00+00:00"},
        **overrides,
    }
    dynamodb.put_item(TableName=TABLE, Item={name: value for name, value in item.items() if value is not None})


def event(headers, method_arn=METHOD_ARN):
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "resource": "/keys",
        "path": "/keys",
        "httpMethod": "POST",
        "headers": headers,
        "requestContext": {"requestId": "5e1f0c2a-api-request", "stage": "prod"},
    }


def authorize(headers, method_arn=METHOD_ARN):
    return handler.lambda_handler(event(headers, method_arn), None)


def deny(principal):
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [METHOD_ARN]}],
        },
    }


# --- Allow ------------------------------------------------------------------------------------------------------


def test_valid_token_is_allowed_with_the_tenants_api_key(table, logs):
    store(table)

    assert authorize({"Authorization": f"Bearer {TOKEN}"}) == {
        "principalId": TENANT,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [METHOD_ARN]}],
        },
        "usageIdentifierKey": API_KEY_VALUE,
        "context": {"tenant_id": TENANT, "api_key_id": API_KEY_ID},
    }
    [line] = logs()
    assert line["outcome"] == "allowed"
    assert line["tenant_id"] == TENANT
    assert line["token_hash_prefix"] == handler.token_hash(TOKEN)[:12]


def test_allow_names_the_stages_route_not_the_request_that_filled_the_cache(table, logs):
    """A cached decision is reused for every request with the token, so it must not echo one request's ARN."""
    store(table)

    response = authorize({"Authorization": f"Bearer {TOKEN}"}, method_arn=f"{STAGE_ARN}/GET/keys/extra")

    assert response["policyDocument"]["Statement"][0]["Resource"] == [METHOD_ARN]


@pytest.mark.parametrize("name", ["authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"])
def test_header_name_is_case_insensitive(table, logs, name):
    store(table)

    assert authorize({name: f"Bearer {TOKEN}"})["usageIdentifierKey"] == API_KEY_VALUE


def test_scheme_is_case_insensitive(table, logs):
    store(table)

    assert authorize({"Authorization": f"bearer {TOKEN}"})["principalId"] == TENANT


# --- Deny (403) -------------------------------------------------------------------------------------------------


def test_unknown_token_is_denied(table, logs):
    store(table)

    assert authorize({"Authorization": f"Bearer {OTHER_TOKEN}"}) == deny("unknown")
    [line] = logs()
    assert line["outcome"] == "denied_unknown"
    assert line["token_hash_prefix"] == handler.token_hash(OTHER_TOKEN)[:12]


def test_revoked_token_is_denied(table, logs):
    store(table)
    assert authorize({"Authorization": f"Bearer {TOKEN}"})["usageIdentifierKey"] == API_KEY_VALUE

    table.delete_item(TableName=TABLE, Key={"token_hash": {"S": handler.token_hash(TOKEN)}})

    assert authorize({"Authorization": f"Bearer {TOKEN}"}) == deny("unknown")


@pytest.mark.parametrize("enabled", [False, None], ids=["disabled", "no-enabled-attribute"])
def test_disabled_token_is_denied(table, logs, enabled):
    store(table, enabled=enabled)

    assert authorize({"Authorization": f"Bearer {TOKEN}"}) == deny(TENANT)
    [line] = logs()
    assert (line["outcome"], line["tenant_id"]) == ("denied_disabled", TENANT)


def test_item_without_api_key_is_denied_and_logged_as_an_error(table, logs):
    store(table, api_key_value=None)

    assert authorize({"Authorization": f"Bearer {TOKEN}"}) == deny(TENANT)
    [line] = logs()
    assert (line["level"], line["outcome"]) == ("ERROR", "denied_incomplete")


def test_stored_hash_must_equal_the_computed_one(logs, monkeypatch):
    """Belt and braces behind the key lookup: an item for another hash never allows."""
    monkeypatch.setattr(
        handler,
        "_lookup",
        lambda table, digest: {
            "token_hash": {"S": handler.token_hash(OTHER_TOKEN)},
            "tenant_id": {"S": TENANT},
            "api_key_id": {"S": API_KEY_ID},
            "api_key_value": {"S": API_KEY_VALUE},
            "enabled": {"BOOL": True},
        },
    )

    assert authorize({"Authorization": f"Bearer {TOKEN}"}) == deny("unknown")


# --- Unauthorized (401) -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_header"),
        (None, "missing_header"),
        ({"Content-Type": "application/json"}, "missing_header"),
        ({"Authorization": ""}, "empty_header"),
        ({"Authorization": "   "}, "empty_header"),
        ({"Authorization": "Bearer " + "a" * 5000}, "header_too_long"),
        ({"Authorization": TOKEN}, "not_bearer"),
        ({"Authorization": f"Basic {TOKEN}"}, "not_bearer"),
        ({"Authorization": f"Token {TOKEN}"}, "not_bearer"),
        ({"Authorization": "Bearer"}, "malformed_token"),
        ({"Authorization": "Bearer "}, "malformed_token"),
        ({"Authorization": "Bearer " + "a" * 31}, "malformed_token"),
        ({"Authorization": "Bearer " + "a" * 257}, "malformed_token"),
        ({"Authorization": f"Bearer {TOKEN[:-2]}+/"}, "malformed_token"),
        ({"Authorization": f"Bearer {TOKEN}="}, "malformed_token"),
        ({"Authorization": f"Bearer {TOKEN} extra"}, "malformed_token"),
        ({"Authorization": f"Bearer {TOKEN}\n"}, "malformed_token"),
        ({"Authorization": f"Bearer\t{TOKEN}"}, "not_bearer"),
        ({"Authorization": f"Bearer {TOKEN}", "authorization": f"Bearer {OTHER_TOKEN}"}, "duplicate_header"),
    ],
    ids=[
        "no-headers",
        "headers-null",
        "other-headers-only",
        "empty",
        "blank",
        "huge",
        "no-scheme",
        "basic",
        "other-scheme",
        "scheme-only",
        "scheme-and-space",
        "too-short",
        "too-long",
        "standard-base64",
        "padding",
        "trailing-word",
        "trailing-newline",
        "tab-separator",
        "two-spellings",
    ],
)
def test_missing_or_malformed_header_is_unauthorized(logs, monkeypatch, headers, reason):
    monkeypatch.setattr(handler, "_lookup", lambda table, digest: pytest.fail("looked up a malformed token"))

    with pytest.raises(Exception) as raised:
        authorize(headers)

    assert (type(raised.value), str(raised.value)) == (Exception, "Unauthorized")
    [line] = logs()
    assert (line["outcome"], line["reason"]) == ("unauthorized", reason)


# --- Failures (500) ---------------------------------------------------------------------------------------------


def test_dynamodb_failure_is_raised_and_logged_without_the_token(aws, logs):
    """No table: a ClientError, which API Gateway answers with a 500 (never a 401 or an Allow)."""
    with pytest.raises(Exception) as raised:
        authorize({"Authorization": f"Bearer {TOKEN}"})

    assert str(raised.value) != "Unauthorized"
    [line] = logs()
    assert (line["outcome"], line["error_code"]) == ("error", "ResourceNotFoundException")
    assert line["token_hash_prefix"] == handler.token_hash(TOKEN)[:12]


def test_missing_table_setting_is_a_configuration_error(table, logs, monkeypatch):
    monkeypatch.delenv("TOKENS_TABLE")

    with pytest.raises(handler.ConfigError, match="TOKENS_TABLE"):
        authorize({"Authorization": f"Bearer {TOKEN}"})


def test_malformed_method_arn_is_an_error_not_a_decision(table, logs):
    store(table)

    with pytest.raises(ValueError, match="methodArn"):
        authorize({"Authorization": f"Bearer {TOKEN}"}, method_arn="arn:aws:lambda:us-east-1:123456789012:x")
