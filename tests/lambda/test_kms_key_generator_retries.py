"""Retry safety of the key generator against moto: what each AWS failure tells the client, and that a request
repeated with its client token gets the key the first one made, never a second key.

The status of every outcome is the one API Gateway gives it: `api_contract.status_for_error` applies the
integration responses' selection patterns to the error message.
"""

import importlib
from contextlib import contextmanager
from unittest import mock

import kms_key_generator_handler as handler
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID as OWN_ACCOUNT

from constructs_lib import api_contract

pytestmark = pytest.mark.seconds(20)

shared = importlib.import_module("tests.lambda.conftest")
make_event, kms_client, key_states, aliases = shared.make_event, shared.kms_client, shared.key_states, shared.aliases
fail_on, internal_error = shared.fail_on, shared.internal_error
OTHER_ACCOUNT, REGION = shared.OTHER_ACCOUNT, shared.REGION

TOKEN = "retry-1_A"
TOKEN_INDEX = f"alias/kms-key-generator-client-tokens/operator/{TOKEN}"
AWS_TEXT = "arn:aws:kms:secret-detail"


def status(error: Exception) -> str:
    return api_contract.status_for_error(str(error))


def enabled_keys(kms) -> list[str]:
    return [key for key, state in key_states(kms).items() if state == "Enabled"]


@contextmanager
def fail_when(predicate, code, message=AWS_TEXT):
    """Fail the AWS calls for which `predicate(operation, params)` holds, as AWS would answer them."""
    original = BaseClient._make_api_call

    def call(client, operation, params):
        if predicate(operation, params):
            raise ClientError({"Error": {"Code": code, "Message": message}}, operation)
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield


# --- Errors a client can act on ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "code", "account"),
    [
        ("DescribeKey", "ThrottlingException", OWN_ACCOUNT),
        ("CreateKey", "ThrottlingException", OWN_ACCOUNT),
        ("AssumeRole", "Throttling", OTHER_ACCOUNT),  # STS's code
        ("AssumeRole", "RequestLimitExceeded", OTHER_ACCOUNT),
    ],
)
def test_throttling_past_the_retries_is_429_and_creates_nothing(aws, context, monkeypatch, operation, code, account):
    monkeypatch.setenv("ALLOWED_ACCOUNTS", OTHER_ACCOUNT)

    with fail_on(operation, code=code, message=AWS_TEXT), pytest.raises(handler.TooManyRequests) as raised:
        handler.lambda_handler(make_event(Account=account), context)

    assert status(raised.value) == "429"
    assert str(raised.value) == (
        f"TooManyRequests: AWS is throttling key creation in {REGION}; retry after the Retry-After delay"
    )
    assert key_states(kms_client(account=account)) == {}


def test_throttled_api_key_lookup_is_429(aws, context, tenants):
    """API Gateway's own throttling code, on the GetTags that identifies a tenant's key, before the request."""
    tenants({"acme": {}})
    caller = {"ApiKeyId": "tenantkey1", "TenantId": ""}

    with fail_on("GetTags", code="TooManyRequestsException"), pytest.raises(handler.TooManyRequests) as raised:
        handler.lambda_handler(make_event(Caller=caller), context)

    assert status(raised.value) == "429"
    assert "us-east-1" in str(raised.value)  # the function's own region: no request is known yet


@pytest.mark.parametrize(("operation", "quota"), [("CreateKey", "KMS keys"), ("CreateAlias", "aliases")])
def test_a_kms_quota_is_503_naming_quota_account_and_region(aws, context, operation, quota):
    with fail_on(operation, code="LimitExceededException"), pytest.raises(handler.ServiceUnavailable) as raised:
        handler.lambda_handler(make_event(), context)

    assert status(raised.value) == "503"
    assert str(raised.value) == (
        f"ServiceUnavailable: the {quota} quota of KMS is reached in account {OWN_ACCOUNT}, Region {REGION}; an "
        "operator must raise it (Service Quotas) or delete unused keys"
    )
    kms = kms_client()
    assert enabled_keys(kms) == [] and aliases(kms) == {}


@pytest.mark.parametrize("code", ["KMSInternalException", "DependencyTimeoutException"])
def test_kms_failing_is_503(aws, context, code):
    with fail_on("CreateKey", code=code), pytest.raises(handler.ServiceUnavailable) as raised:
        handler.lambda_handler(make_event(), context)

    assert status(raised.value) == "503"
    assert AWS_TEXT not in str(raised.value)


def test_anything_else_stays_the_generic_500(aws, context):
    with fail_on("CreateKey", code="KMSInvalidStateException"), pytest.raises(handler.InternalError) as raised:
        handler.lambda_handler(make_event(), context)

    assert status(raised.value) == "500"
    assert str(raised.value) == internal_error(context)


def test_a_throttled_alias_after_the_key_leaves_no_key_without_its_alias(aws, context):
    with fail_on("CreateAlias", code="ThrottlingException"), pytest.raises(handler.TooManyRequests):
        handler.lambda_handler(make_event(ClientToken=TOKEN), context)

    kms = kms_client()
    assert list(key_states(kms).values()) == ["PendingDeletion"]
    assert aliases(kms) == {}
    # The client's retry with the same token is a fresh request that succeeds.
    result = handler.lambda_handler(make_event(ClientToken=TOKEN), context)
    assert result["Replayed"] is False
    assert enabled_keys(kms) == [result["KeyId"]]
    assert aliases(kms) == {"alias/team/app-key": result["KeyId"], TOKEN_INDEX: result["KeyId"]}


# --- Idempotent requests ---------------------------------------------------------------------------------------


def test_a_replay_after_a_lost_response_returns_the_first_key(aws, context):
    first = handler.lambda_handler(make_event(ClientToken=TOKEN), context)
    replay = handler.lambda_handler(make_event(ClientToken=TOKEN), context)

    assert first["Replayed"] is False and replay["Replayed"] is True
    assert {**replay, "Replayed": False} == first
    kms = kms_client()
    assert enabled_keys(kms) == [first["KeyId"]]
    tags = {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=first["KeyId"])["Tags"]}
    assert tags["ClientToken"] == TOKEN and tags["Tenant"] == "operator"
    assert tags["RequestFingerprint"] == handler.request_fingerprint(
        handler.KeyRequest(
            OWN_ACCOUNT, REGION, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "alias/team/app-key", "Key for the app", TOKEN
        )
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"KeyDescription": "another description"},
            "Conflict: client_token was already used with different parameters",
        ),
        ({"KeyUsage": "SIGN_VERIFY"}, "Conflict: client_token was already used with different parameters"),
        ({"KeyAlias": "team/other-key"}, "Conflict: client_token was already used for another alias"),
    ],
)
def test_the_same_token_with_other_parameters_is_409_and_creates_nothing(aws, context, change, message):
    first = handler.lambda_handler(make_event(ClientToken=TOKEN), context)

    with pytest.raises(handler.Conflict) as raised:
        handler.lambda_handler(make_event(ClientToken=TOKEN, **change), context)

    assert (str(raised.value), status(raised.value)) == (message, "409")
    assert enabled_keys(kms_client()) == [first["KeyId"]]


@pytest.mark.parametrize("token", [None, "another-token"])
def test_an_alias_taken_by_another_token_or_none_is_the_plain_409(aws, context, token):
    handler.lambda_handler(make_event(ClientToken=TOKEN), context)
    event = make_event(ClientToken=token) if token else make_event()

    with pytest.raises(handler.Conflict) as raised:
        handler.lambda_handler(event, context)

    assert str(raised.value) == "Conflict: alias alias/team/app-key already exists"
    assert len(enabled_keys(kms_client())) == 1


def test_another_tenant_replaying_a_token_gets_no_one_elses_key(aws, context, tenants):
    """Tokens are per caller: beta's request with acme's token and acme's alias is an ordinary taken alias."""
    tenants({"acme": {"alias_prefix": "shared/"}, "beta": {"alias_prefix": "beta/"}})
    acme, beta = {"ApiKeyId": "", "TenantId": "acme"}, {"ApiKeyId": "", "TenantId": "beta"}
    handler.lambda_handler(make_event(Caller=acme, KeyAlias="shared/k", ClientToken=TOKEN), context)

    with pytest.raises(handler.Forbidden):  # beta may not even name acme's alias
        handler.lambda_handler(make_event(Caller=beta, KeyAlias="shared/k", ClientToken=TOKEN), context)
    result = handler.lambda_handler(make_event(Caller=beta, KeyAlias="beta/k", ClientToken=TOKEN), context)

    assert result["Replayed"] is False  # the same token is beta's own
    assert f"alias/kms-key-generator-client-tokens/beta/{TOKEN}" in aliases(kms_client())


def test_the_operator_cannot_take_the_token_index(aws, context):
    with pytest.raises(handler.BadRequest) as raised:
        handler.lambda_handler(make_event(KeyAlias="kms-key-generator-client-tokens/acme/x"), context)

    assert str(raised.value) == (
        "BadRequest: KeyAlias: names under alias/kms-key-generator-client-tokens/ are reserved for the service"
    )


@pytest.mark.parametrize("token", ["", "x" * 65, "has space", "semi;colon", 7])
def test_a_malformed_token_is_400(aws, context, token):
    with pytest.raises(handler.BadRequest) as raised:
        handler.lambda_handler(make_event(ClientToken=token), context)

    assert status(raised.value) == "400" and "ClientToken" in str(raised.value)
    assert key_states(kms_client()) == {}


def test_a_replay_of_a_key_scheduled_for_deletion_is_409(aws, context):
    first = handler.lambda_handler(make_event(ClientToken=TOKEN), context)
    kms_client().schedule_key_deletion(KeyId=first["KeyId"], PendingWindowInDays=7)

    with pytest.raises(handler.Conflict) as raised:
        handler.lambda_handler(make_event(ClientToken=TOKEN), context)

    assert str(raised.value) == "Conflict: the key this client_token created is PendingDeletion"


def test_a_concurrent_retry_gets_the_key_of_the_attempt_that_won(aws, context):
    """The retry's alias check ran before the first attempt's CreateAlias; its own CreateAlias then loses."""
    first = handler.lambda_handler(make_event(ClientToken=TOKEN), context)
    checks = []

    def before_the_first_attempt_finished(operation, params):
        if operation == "DescribeKey" and params.get("KeyId") in ("alias/team/app-key", TOKEN_INDEX):
            checks.append(params["KeyId"])
            return len(checks) <= 2  # the two lookups before CreateKey see nothing yet
        return False

    with fail_when(before_the_first_attempt_finished, "NotFoundException"):
        replay = handler.lambda_handler(make_event(ClientToken=TOKEN), context)

    assert replay == {**first, "Replayed": True}
    kms = kms_client()
    assert enabled_keys(kms) == [first["KeyId"]]  # the retry's own key was discarded
    assert len(key_states(kms)) == 2


def test_an_unindexed_token_still_returns_the_complete_key(aws, context, capsys):
    """The index alias comes after the key is complete: failing to write it is logged, not a failed request."""
    with fail_when(
        lambda op, params: op == "CreateAlias" and params["AliasName"] == TOKEN_INDEX, "ThrottlingException"
    ):
        result = handler.lambda_handler(make_event(ClientToken=TOKEN), context)

    kms = kms_client()
    assert aliases(kms) == {"alias/team/app-key": result["KeyId"]}
    assert "client token not indexed" in capsys.readouterr().out
    # A replay still finds the key through its alias and tags.
    assert handler.lambda_handler(make_event(ClientToken=TOKEN), context)["KeyId"] == result["KeyId"]


def test_no_token_keeps_the_keys_tags_and_aliases_as_before(aws, context):
    result = handler.lambda_handler(make_event(), context)

    kms = kms_client()
    tags = {tag["TagKey"] for tag in kms.list_resource_tags(KeyId=result["KeyId"])["Tags"]}
    assert tags == {"CreatedBy", "RequestId", "Tenant"}
    assert aliases(kms) == {"alias/team/app-key": result["KeyId"]}


def test_the_handler_accepts_exactly_the_tokens_the_request_model_does():
    """The model (API Gateway's validator) and the handler check one rule: the same pattern, and 64 at most."""
    schema = api_contract.REQUEST_MODEL_SCHEMA["properties"]["client_token"]
    assert schema["pattern"] == f"^{handler._CLIENT_TOKEN_RE.pattern}$"
    assert schema["maxLength"] == 64
