"""Shared fixtures for the Lambda handler tests.

The handler lives in `lambda/kms_key_generator/handler.py`; `lambda` is a Python keyword and every function's
file is called `handler.py`, so it is loaded from its path under the unique module name
`kms_key_generator_handler` (see `tests/support/lambdas.py`), which test modules then import by that name.

The key generator's default caller is the operator in static mode: `OPERATOR_API_KEY_ID` is set and
`operator_caller()` is the `Caller` the mapping template builds for that key.
"""

import json
from contextlib import contextmanager
from types import SimpleNamespace
from unittest import mock
from urllib.parse import unquote

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from tests.support.lambdas import load_handler

handler = load_handler("kms_key_generator", "kms_key_generator_handler")
_CONTAINER_CACHES = (handler._session, handler._client, handler._caller_identity, handler._tenants_from_file)

OPERATOR_API_KEY_ID = "opkey00001"
KEY_FACTORY_ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/kms-key-generator-key-factory"
REMAINING_MS = 20_000  # the function's default timeout


OTHER_ACCOUNT = "111122223333"
REGION = "eu-west-1"
CROSS_ACCOUNT_ROLE = "kms-key-generator-cross-account"


def operator_caller():
    """The `Caller` of a request made with the service's own (static) API key."""
    return {"ApiKeyId": OPERATOR_API_KEY_ID, "TenantId": ""}


def _reset_container():
    for cache in _CONTAINER_CACHES:
        cache.cache_clear()
    handler._API_KEY_TENANTS.clear()


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch, tmp_path):
    """Dummy credentials and the function's default configuration; a fresh "container" for every test."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "OPERATOR_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SERVICE_NAME", "kms-key-generator")
    monkeypatch.setenv("CROSS_ACCOUNT_ROLE_NAME", "kms-key-generator-cross-account")
    monkeypatch.setenv("ALLOWED_ACCOUNTS", "")
    monkeypatch.setenv("ALLOWED_REGIONS", "")
    monkeypatch.setenv("KEY_FACTORY_ROLE_ARN", KEY_FACTORY_ROLE_ARN)
    monkeypatch.setenv("OPERATOR_API_KEY_ID", OPERATOR_API_KEY_ID)
    # No tenants unless a test writes some (a missing file means none, as in an old package).
    monkeypatch.setattr(handler, "TENANTS_FILE", str(tmp_path / "tenants.json"))
    # The deadline's clock stands still unless a test moves it (test_kms_key_generator_deadline.py): on a busy
    # machine moto's first calls took 7 s of the 20 s and the handler refused to start CreateKey.
    monkeypatch.setattr(handler, "_clock", lambda: 0.0)
    _reset_container()
    yield
    _reset_container()


@pytest.fixture
def tenants(monkeypatch, tmp_path):
    """Write tenants.json (what the package carries next to handler.py) for the rest of the test."""

    def write(policies):
        path = tmp_path / "packaged" / "tenants.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(policies) if not isinstance(policies, str) else policies)
        monkeypatch.setattr(handler, "TENANTS_FILE", str(path))
        handler._tenants_from_file.cache_clear()
        return policies

    return write


def _emulate_api_key_tags(original):
    """moto's GetTags only knows stages: answer it for `.../apikeys/<id>` ARNs from the key's own tags."""

    def call(client, operation, params):
        arn = unquote(params.get("resourceArn", "")) if operation == "GetTags" else ""
        if ":apigateway:" in arn and "::/apikeys/" in arn:
            api_key_id = arn.rsplit("/", 1)[1]
            try:
                key = original(client, "GetApiKey", {"apiKey": api_key_id, "includeValue": False})
            except ClientError as error:
                raise ClientError(error.response, "GetTags") from None
            return {"tags": key.get("tags", {})}
        return original(client, operation, params)

    return call


@pytest.fixture
def aws():
    """Every AWS call in the test goes to moto (with API Gateway's GetTags answered for API keys too)."""
    with mock_aws(), mock.patch.object(BaseClient, "_make_api_call", _emulate_api_key_tags(BaseClient._make_api_call)):
        yield


@pytest.fixture
def context():
    """What the Lambda runtime passes: the request id, the function's own ARN (moto's default account) and
    the time left (the whole default timeout)."""
    return SimpleNamespace(
        aws_request_id="c0ffee00-1234-4abc-8def-0123456789ab",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:kms-key-generator",
        get_remaining_time_in_millis=lambda: REMAINING_MS,
    )


# --- Helpers the key generator's test modules share -----------------------------------------------------------


def make_event(**overrides):
    """A valid request with fields replaced by `overrides`; a value of `...` removes the field."""
    event = {
        "Account": DEFAULT_ACCOUNT_ID,
        "Region": REGION,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyAlias": "team/app-key",
        "KeyDescription": "Key for the app",
        "Caller": operator_caller(),
    }
    event.update(overrides)
    return {name: value for name, value in event.items() if value is not ...}


def kms_client(region=REGION, account=DEFAULT_ACCOUNT_ID):
    """A test-side KMS client acting in `account` (another account is reached the way moto models it)."""
    if account == DEFAULT_ACCOUNT_ID:
        return boto3.client("kms", region_name=region)
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/inspector", RoleSessionName="inspector"
    )["Credentials"]
    return boto3.client(
        "kms",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def key_states(client):
    """{key id: KeyState} for every key the client can see."""
    return {
        key["KeyId"]: client.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"]
        for key in client.list_keys()["Keys"]
    }


def aliases(client):
    """{alias: target key id} for customer aliases (moto also lists the AWS managed `alias/aws/*` ones)."""
    return {
        alias["AliasName"]: alias.get("TargetKeyId")
        for alias in client.list_aliases()["Aliases"]
        if not alias["AliasName"].startswith("alias/aws/")
    }


@contextmanager
def fail_on(*operations, code="KMSInvalidStateException", message="arn:aws:kms:secret-detail invalid state"):
    """Make the named AWS operations fail with a ClientError, as if AWS had returned it (by default an error no
    client can act on: a 500)."""
    original = BaseClient._make_api_call

    def call(client, operation, params):
        if operation in operations:
            raise ClientError({"Error": {"Code": code, "Message": message}}, operation)
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield


@contextmanager
def record_calls():
    """Record (operation, params) of every AWS call made while active."""
    original = BaseClient._make_api_call
    calls = []

    def call(client, operation, params):
        calls.append((operation, params))
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield calls


def internal_error(context):
    return f"InternalError: key creation failed (request {context.aws_request_id})"
