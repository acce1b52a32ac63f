"""The deadline against moto: every AWS call fits the time the Lambda has left, CreateKey starts only when the
setup and its undoing can follow, and a key that cannot get its alias in time is scheduled for deletion.

Time is the handler's clock, advanced by the calls made slow here, so nothing sleeps.
"""

import importlib
import json
from contextlib import contextmanager
from types import SimpleNamespace
from unittest import mock

import boto3
import kms_key_generator_handler as handler
import pytest
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

# `lambda` is a keyword: the shared conftest is reached by the name pytest registered it under.
shared = importlib.import_module("tests.lambda.conftest")
make_event, kms_client, key_states, aliases = shared.make_event, shared.kms_client, shared.key_states, shared.aliases
record_calls, internal_error = shared.record_calls, shared.internal_error


@pytest.fixture
def clock(monkeypatch):
    """The handler's clock, in seconds; tests move it forward."""
    now = SimpleNamespace(value=1000.0)
    monkeypatch.setattr(handler, "_clock", lambda: now.value)
    return now


def lambda_context(remaining_ms):
    return SimpleNamespace(
        aws_request_id="deadline-request",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{shared.DEFAULT_ACCOUNT_ID}:function:kms-key-generator",
        get_remaining_time_in_millis=lambda: remaining_ms,
    )


@contextmanager
def slow(clock, operation, seconds, error=None):
    """`operation` takes `seconds`, then answers (or raises `error`)."""
    original = BaseClient._make_api_call

    def call(client, name, params):
        if name != operation:
            return original(client, name, params)
        clock.value += seconds
        if error is not None:
            raise error
        return original(client, name, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield


def fails_with_nothing_created(event, context):
    with record_calls() as calls, pytest.raises(handler.InternalError) as raised:
        handler.lambda_handler(event, context)
    assert str(raised.value) == internal_error(context)
    assert key_states(kms_client()) == {}
    return [operation for operation, _ in calls]


def fails_with_key_discarded(event, context):
    with record_calls() as calls, pytest.raises(handler.InternalError) as raised:
        handler.lambda_handler(event, context)
    assert str(raised.value) == internal_error(context)
    kms = kms_client()
    assert list(key_states(kms).values()) == ["PendingDeletion"]
    assert aliases(kms) == {}
    return [operation for operation, _ in calls]


# --- Before CreateKey: refuse what cannot finish -------------------------------------------------------------------


@pytest.mark.parametrize(("key_usage", "needed_ms"), [("ENCRYPT_DECRYPT", 13_500), ("GENERATE_VERIFY_MAC", 11_500)])
def test_too_little_time_left_is_refused_before_any_call(aws, clock, capsys, key_usage, needed_ms):
    calls = fails_with_nothing_created(make_event(KeyUsage=key_usage), lambda_context(needed_ms - 1))

    assert calls == []
    assert '"error_type": "DeadlineExceeded"' in capsys.readouterr().out


@pytest.mark.parametrize(("key_usage", "needed_ms"), [("ENCRYPT_DECRYPT", 13_500), ("GENERATE_VERIFY_MAC", 11_500)])
def test_just_enough_time_creates_the_key(aws, clock, key_usage, needed_ms):
    result = handler.lambda_handler(make_event(KeyUsage=key_usage), lambda_context(needed_ms))

    assert aliases(kms_client()) == {"alias/team/app-key": result["KeyId"]}


def test_slow_alias_lookup_leaves_too_little_time_and_nothing_is_created(aws, clock):
    with slow(clock, "DescribeKey", 7):
        calls = fails_with_nothing_created(make_event(), lambda_context(20_000))

    assert calls == ["DescribeKey"]


def test_slow_tenant_lookup_leaves_too_little_time_and_nothing_is_created(aws, clock, tenants):
    tenants({"acme": {}})
    api_key_id = boto3.client("apigateway", region_name="us-east-1").create_api_key(
        name="acme", tags={"Tenant": "acme"}
    )["id"]
    event = make_event(Caller={"ApiKeyId": api_key_id, "TenantId": ""}, KeyAlias="acme/key")

    with slow(clock, "GetTags", 8):
        calls = fails_with_nothing_created(event, lambda_context(20_000))

    assert calls == ["GetTags"]


def test_tenant_lookup_is_not_started_without_time_for_a_key(aws, clock, tenants):
    tenants({"acme": {}})
    event = make_event(Caller={"ApiKeyId": "acmekey001", "TenantId": ""}, KeyAlias="acme/key")

    assert fails_with_nothing_created(event, lambda_context(11_000)) == []


# --- After CreateKey: no usable key without its alias --------------------------------------------------------------


def test_slow_create_key_leaves_time_only_to_undo_it(aws, clock):
    with slow(clock, "CreateKey", 12):
        calls = fails_with_key_discarded(make_event(), lambda_context(20_000))

    assert calls == ["DescribeKey", "CreateKey", "ScheduleKeyDeletion"]


def test_slow_tagging_leaves_no_time_for_the_alias_and_the_key_is_discarded(aws, clock, capsys):
    with slow(clock, "TagResource", 14):
        calls = fails_with_key_discarded(make_event(), lambda_context(20_000))

    assert calls == ["DescribeKey", "CreateKey", "TagResource", "ScheduleKeyDeletion"]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(record["outcome"], record.get("error_type")) for record in records] == [
        ("rolled_back", None),
        ("error", "DeadlineExceeded"),
    ]


def test_alias_timing_out_with_the_budget_spent_discards_the_key(aws, clock):
    timeout = ReadTimeoutError(endpoint_url="https://kms.eu-west-1.amazonaws.com/")

    with slow(clock, "CreateAlias", 15, error=timeout):
        calls = fails_with_key_discarded(make_event(), lambda_context(20_000))

    assert calls[-2:] == ["CreateAlias", "ScheduleKeyDeletion"]


def test_cleanup_is_still_tried_when_the_budget_is_overrun(aws, clock):
    """A call that overran its own timeouts (it should not) still leaves the key unusable."""
    with slow(clock, "CreateAlias", 60, error=ReadTimeoutError(endpoint_url="https://kms")):
        fails_with_key_discarded(make_event(), lambda_context(20_000))


# --- Per-call limits -------------------------------------------------------------------------------------------


@contextmanager
def record_limits():
    """(operation, max attempts, connect timeout, read timeout) of every call."""
    original = BaseClient._make_api_call
    limits = []

    def call(client, operation, params):
        config = client.meta.config
        limits.append((operation, config.retries["total_max_attempts"], config.connect_timeout, config.read_timeout))
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield limits


def test_each_call_gets_the_attempts_that_fit_and_create_key_only_one(aws, clock):
    with record_limits() as limits:
        handler.lambda_handler(make_event(), lambda_context(20_000))

    assert limits == [
        ("DescribeKey", 2, 1, 1),  # 19.5 s left, 13 s kept for CreateKey and after: 2 attempts (5 s) fit
        ("CreateKey", 1, 1, 4),
        ("TagResource", 3, 1, 1),
        ("EnableKeyRotation", 3, 1, 1),
        ("CreateAlias", 3, 1, 1),
    ]


def test_a_late_call_gets_fewer_attempts(aws, clock):
    with record_limits() as limits, slow(clock, "TagResource", 11):
        handler.lambda_handler(make_event(), lambda_context(20_000))

    # 19.5 - 11 = 8.5 s left: rotation keeps 4 s (alias + cleanup), 2 attempts (5 s) fit; the alias keeps 2 s.
    assert [(operation, attempts) for operation, attempts, _, _ in limits[-2:]] == [
        ("EnableKeyRotation", 1),
        ("CreateAlias", 2),
    ]


def test_retried_alias_that_had_succeeded_is_not_a_conflict(aws, clock):
    """CreateAlias's first attempt made the alias but its answer was lost; the retry finds it taken, by us."""
    original = BaseClient._make_api_call

    def call(client, operation, params):
        result = original(client, operation, params)
        if operation == "CreateAlias":
            raise ClientError({"Error": {"Code": "AlreadyExistsException", "Message": "exists"}}, operation)
        return result

    with mock.patch.object(BaseClient, "_make_api_call", call):
        result = handler.lambda_handler(make_event(), lambda_context(20_000))

    kms = kms_client()
    assert aliases(kms) == {"alias/team/app-key": result["KeyId"]}
    assert key_states(kms) == {result["KeyId"]: "Enabled"}


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_attempts_are_total_attempts_on_the_wire(aws, monkeypatch, attempts):
    """botocore's `max_attempts` would count retries only (one more request than asked): CreateKey's single
    attempt must really be one request, since a retry after a lost answer could make a second key."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    client = handler._client("kms", "eu-west-1", None, attempts, handler.CREATE_KEY_READ_TIMEOUT_S)
    sent = []

    def throttled(request, **kwargs):
        sent.append(request.url)
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException"}, RawBody(body))

    client.meta.events.register_first("before-send.kms.CreateKey", throttled)
    with pytest.raises(ClientError):
        client.create_key()

    assert len(sent) == attempts


class RawBody:
    def __init__(self, content):
        self._content = content

    def stream(self, **kwargs):
        yield self._content
