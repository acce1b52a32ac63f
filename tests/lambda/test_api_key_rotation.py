"""The API-key rotation handler against moto, driven step by step the way Secrets Manager drives it.

Emulating Secrets Manager: moto's RotateSecret would invoke the function through its Lambda emulation (docker),
and without a function it marks the new version AWSCURRENT on the spot. So the tests do Secrets Manager's part
themselves, on moto's backend, as moto's own RotateSecret does before it invokes a function:
- `enable_rotation` sets the rotation fields DescribeSecret reports (`RotationEnabled`, the function ARN);
- `start_rotation` registers the token as a version that carries AWSPENDING and has no value yet (what
  DescribeSecret shows a rotation function before createSecret; AWS's rotation template relies on it);
- `run_steps` then invokes createSecret, setSecret, testSecret and finishSecret with that token, and a retry
  after a failure runs all four again with the same token, as Secrets Manager does.

One moto gap is patched (`first_current_version`): moving AWSCURRENT onto a version of a secret that has none
(a secret created without a value) crashes moto, where Secrets Manager simply attaches the label.

Cleanup events are built as the AWS provider's `aws_lambda_invocation` (lifecycle_scope = "CRUD") sends them:
the resource's input plus `"tf": {"action", "prev_input"}` (`prev_input` null on create).

Time: one virtual clock (`CLOCK`) drives the handler's `now()` and the timestamps moto gives API keys (`createdDate`)
and SSM parameters (`LastModifiedDate`), so a test moves time without waiting. `start_rotation` (and so `rotate`)
first lets the rotation period pass, as the schedule does; a test passes `wait=` for back-to-back rotations.

The invariants every rotation test ends on: the AWSCURRENT key is enabled, in every usage plan and equal to the SSM
parameter (decrypted, encrypted with the configured KMS key); after scheduled rotations every API key is the current
or the previous one; never more than `MAX_LIVE_KEYS` keys of the secret, checked after every step; the handler
never lists API keys.
"""

import json
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto.apigateway import models as apigateway_models
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends
from moto.ssm import models as ssm_models

from tests.support.lambdas import load_handler

pytestmark = pytest.mark.seconds(23)

handler = load_handler("api_key_rotation", "api_key_rotation_handler")

REGION = "us-east-1"  # tests/lambda/conftest.py sets it as AWS_DEFAULT_REGION
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:kms-key-generator-api-key-rotation"
PARAMETER_NAME = "/kms-key-generator/api-key"
# moto's SSM never checks the key exists, and generating a real one (an RSA key pair) per test costs time.
PARAMETER_KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT_ID}:key/0b8f6c2e-2f1d-4c4e-9a51-6f1f0e4a7d31"
KEY_NAME = "kms-key-generator"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
GRACE = timedelta(hours=24)  # ROTATION_GRACE_HOURS, the setting's default
PERIOD = timedelta(days=30)  # rotation.days, the time start_rotation lets pass by default
BACK_TO_BACK = timedelta(seconds=5)  # an operator's rotate-secret right after a rotation


# --- Fixtures and Secrets Manager's part ------------------------------------------------------------------------


# moto resets boto3's default session for every test, and reloading botocore's service models into a new session
# was most of this module's time; so the tests, like the handler (whose `_session` is never cleared here), keep
# one session for the whole module. It holds nothing a test could leak: conftest's dummy credentials, a fixed
# region.
_TEST_SESSION = boto3.session.Session()


@cache
def client(service):
    """The tests' own client for `service`, made once per test."""
    return _TEST_SESSION.client(service, region_name=REGION)


@pytest.fixture(autouse=True)
def fresh_container():
    """Every test starts with no cached client, like a new container (the session is kept, see above)."""
    for cached in (handler._client, client):
        cached.cache_clear()
    yield
    for cached in (handler._client, client):
        cached.cache_clear()


class Clock:
    """Virtual time: the real clock plus an offset the tests advance."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


CLOCK = Clock()


@pytest.fixture(autouse=True)
def virtual_time(monkeypatch):
    """The handler's clock and moto's API key and SSM timestamps all read CLOCK, which starts at real time."""
    CLOCK.offset = timedelta(0)
    monkeypatch.setattr(handler, "now", CLOCK.now)
    monkeypatch.setattr(apigateway_models, "time", SimpleNamespace(time=lambda: CLOCK.now().timestamp()))
    monkeypatch.setattr(ssm_models, "utcnow", lambda: CLOCK.now().replace(tzinfo=None))


@pytest.fixture(autouse=True)
def first_current_version(monkeypatch):
    """Let AWSCURRENT move onto a secret's first version without RemoveFromVersionId, as Secrets Manager does."""
    original = SecretsManagerBackend.update_secret_version_stage

    def update(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
        secret = self.secrets[secret_id]
        attached = any(version_stage in version["version_stages"] for version in secret.versions.values())
        if version_stage == CURRENT and not remove_from_version_id and not attached:
            secret.versions[move_to_version_id]["version_stages"].append(CURRENT)
            return secret.arn, secret.name
        return original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)

    monkeypatch.setattr(SecretsManagerBackend, "update_secret_version_stage", update)


@pytest.fixture
def build(aws, monkeypatch):
    """What Terraform creates: usage plans, the SSM parameter, the tagged secret with rotation on; no API key."""

    def build_service(secret_string=None):
        usage_plan_ids = tuple(client("apigateway").create_usage_plan(name=name)["id"] for name in ("gold", "silver"))
        client("ssm").put_parameter(
            Name=PARAMETER_NAME, Value="placeholder", Type="SecureString", KeyId=PARAMETER_KMS_KEY_ARN
        )
        secret = {
            "Name": "kms-key-generator/api-key",
            "Tags": [
                {"Key": "KeyName", "Value": KEY_NAME},
                {"Key": "Project", "Value": "kms-key-generator"},
                {"Key": "CostCategory", "Value": "security"},
            ],
        }
        if secret_string is not None:
            secret["SecretString"] = secret_string
        secret_arn = client("secretsmanager").create_secret(**secret)["ARN"]
        enable_rotation(secret_arn)
        monkeypatch.setenv("SSM_PARAMETER_NAME", PARAMETER_NAME)
        monkeypatch.setenv("SSM_KMS_KEY_ID", PARAMETER_KMS_KEY_ARN)
        monkeypatch.setenv("ROTATION_GRACE_HOURS", str(int(GRACE / timedelta(hours=1))))
        monkeypatch.setenv("USAGE_PLAN_IDS", " ".join(usage_plan_ids))
        return SimpleNamespace(secret_arn=secret_arn, usage_plan_ids=usage_plan_ids)

    return build_service


@pytest.fixture
def service(build):
    """The usual starting point: a secret with no version at all, two usage plans."""
    return build()


def moto_secret(secret_arn):
    return secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[secret_arn]


def enable_rotation(secret_arn):
    """What RotateSecret with a function and a schedule records, without moto invoking anything."""
    secret = moto_secret(secret_arn)
    secret.rotation_requested = True
    secret.rotation_enabled = True
    secret.rotation_lambda_arn = FUNCTION_ARN
    secret.auto_rotate_after_days = 30


def start_rotation(secret_arn, wait=PERIOD):
    """What RotateSecret does before invoking the function, `wait` after the previous one (the schedule's period by
    default): AWSPENDING moves to a new version with no value."""
    CLOCK.advance(wait)
    token = str(uuid.uuid4())
    secret = moto_secret(secret_arn)
    secret.remove_version_stages_from_old_versions([PENDING])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": [PENDING]}
    return token


def invoke(service, step, token, context):
    event = {"Step": step, "SecretId": service.secret_arn, "ClientRequestToken": token}
    return handler.lambda_handler(event, context)


def run_step(service, step, token, context):
    """One step, then the bound on live keys, whatever happened: at most MAX_LIVE_KEYS keys of the secret; and the
    handler never lists API keys (its role may not)."""
    try:
        with record_calls() as calls:
            invoke(service, step, token, context)
    finally:
        assert "GetApiKeys" not in calls
        tags = [key.get("tags", {}) for key in api_keys().values()]
        assert len([tag for tag in tags if tag.get("RotationSecretArn") == service.secret_arn]) <= handler.MAX_LIVE_KEYS


def run_steps(service, token, context):
    for step in STEPS:
        run_step(service, step, token, context)


def rotate(service, context, wait=PERIOD):
    """A whole successful rotation, `wait` after the previous one; returns its token."""
    token = start_rotation(service.secret_arn, wait)
    run_steps(service, token, context)
    return token


# --- Inspection ---------------------------------------------------------------------------------------------------


def api_keys():
    """{id: key with value and tags} for every API key in the account."""
    return {key["id"]: key for key in client("apigateway").get_api_keys(includeValues=True)["items"]}


def secret_key(service, stage):
    """The JSON the version carrying `stage` holds, or None (no such version, or not a key)."""
    try:
        value = client("secretsmanager").get_secret_value(SecretId=service.secret_arn, VersionStage=stage)
    except ClientError:
        return None
    return handler.parse_key_secret(value["SecretString"])


def stored_key(service, token):
    """The JSON the token's version holds."""
    value = client("secretsmanager").get_secret_value(SecretId=service.secret_arn, VersionId=token)
    return handler.parse_key_secret(value["SecretString"])


def version_stages(service):
    return client("secretsmanager").describe_secret(SecretId=service.secret_arn).get("VersionIdsToStages", {})


def parameter():
    """The SSM parameter as clients read it, plus the KMS key it is encrypted with."""
    ssm = client("ssm")
    value = ssm.get_parameter(Name=PARAMETER_NAME, WithDecryption=True)["Parameter"]["Value"]
    (description,) = ssm.describe_parameters()["Parameters"]
    return value, description["KeyId"]


def in_usage_plan(usage_plan_id, key_id):
    try:
        client("apigateway").get_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id)
    except ClientError:
        return False
    return True


def assert_rotated(service, token, previous_id=None, other_keys=()):
    """The rotation with `token` is complete and the invariants hold; returns the current key's JSON."""
    assert CURRENT in version_stages(service)[token]
    current = secret_key(service, CURRENT)
    keys = api_keys()
    live = keys[current["id"]]
    assert live["enabled"] is True
    assert live["value"] == current["value"]
    assert all(in_usage_plan(plan, current["id"]) for plan in service.usage_plan_ids)
    assert parameter() == (current["value"], PARAMETER_KMS_KEY_ARN)
    assert set(keys) == {current["id"], *([previous_id] if previous_id else []), *other_keys}
    if previous_id:
        assert secret_key(service, PREVIOUS)["id"] == previous_id
        assert keys[previous_id]["enabled"] is True
    return current


@contextmanager
def record_calls():
    """Record the operation name of every AWS call made while active."""
    original = BaseClient._make_api_call
    calls = []

    def call(botocore_client, operation, params):
        calls.append(operation)
        return original(botocore_client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield calls


@contextmanager
def fail_once(operation, occurrence=1, when="before", code="InternalFailure"):
    """The `occurrence`-th call of `operation` fails: before reaching AWS, or after AWS did it (a lost response)."""
    original = BaseClient._make_api_call
    seen = 0

    def call(botocore_client, name, params):
        nonlocal seen
        if name == operation:
            seen += 1
            if seen == occurrence:
                if when == "after":
                    with suppress(ClientError):  # AWS's own answer is lost too
                        original(botocore_client, name, params)
                raise ClientError({"Error": {"Code": code, "Message": "injected failure"}}, name)
        return original(botocore_client, name, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield


# --- Full rotations -------------------------------------------------------------------------------------------


def test_rotation_creates_tagged_key_in_every_usage_plan_and_publishes_it(service, context):
    token = rotate(service, context)

    current = assert_rotated(service, token)
    assert set(current) == {"id", "value", "name", "usage_plan_ids", "created"}
    assert current["name"] == f"{KEY_NAME}-{token[:8]}"
    assert current["usage_plan_ids"] == list(service.usage_plan_ids)
    assert datetime.fromisoformat(current["created"]).utcoffset() is not None
    assert api_keys()[current["id"]]["tags"] == {
        "RotationToken": token,
        "RotationSecretArn": service.secret_arn,
        "Project": "kms-key-generator",
        "CostCategory": "security",
    }


def test_parameter_is_overwritten_with_the_configured_kms_key(service, context):
    """moto keeps a parameter's key when PutParameter omits KeyId, where SSM would switch to aws/ssm: so the
    call itself is checked."""
    with mock.patch.object(BaseClient, "_make_api_call", autospec=True, side_effect=BaseClient._make_api_call) as spy:
        rotate(service, context)

    puts = [params for (_, operation, params), _ in spy.call_args_list if operation == "PutParameter"]
    assert puts == [
        {
            "Name": PARAMETER_NAME,
            "Value": secret_key(service, CURRENT)["value"],
            "Type": "SecureString",
            "KeyId": PARAMETER_KMS_KEY_ARN,
            "Overwrite": True,
        }
    ]


def test_previous_key_stays_valid_until_the_next_rotation_starts(service, context):
    rotate(service, context)
    first = secret_key(service, CURRENT)

    second_token = rotate(service, context)

    assert_rotated(service, second_token, previous_id=first["id"])
    assert all(in_usage_plan(plan, first["id"]) for plan in service.usage_plan_ids)


@pytest.mark.parametrize(
    "initial", [None, "{}", "not json", '{"id": 1}'], ids=["no-version", "empty-object", "not-json", "not-a-key"]
)
def test_first_rotation_works_without_a_usable_current_value(build, context, initial):
    service = build(secret_string=initial)

    token = rotate(service, context)

    assert_rotated(service, token)
    assert secret_key(service, PREVIOUS) is None


def test_three_rotations_delete_only_the_key_whose_grace_window_ended(service, context):
    other = client("apigateway").create_api_key(name="someone-elses-key", enabled=True)["id"]
    tokens = [rotate(service, context) for _ in range(3)]

    keys_by_token = {key["tags"]["RotationToken"]: key_id for key_id, key in api_keys().items() if key_id != other}
    assert set(keys_by_token) == set(tokens[1:])
    assert_rotated(service, tokens[2], previous_id=keys_by_token[tokens[1]], other_keys={other})


def test_previous_key_not_created_by_this_rotation_is_left_in_place(build, context, capsys):
    legacy = client("apigateway").create_api_key(name="legacy", enabled=True)
    service = build(secret_string=json.dumps({"id": legacy["id"], "value": legacy["value"]}))
    rotate(service, context)
    first = secret_key(service, CURRENT)
    capsys.readouterr()

    token = rotate(service, context)

    assert_rotated(service, token, previous_id=first["id"], other_keys={legacy["id"]})
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [record for record in records if record["level"] == "WARNING"]
    assert [(record["message"], record["key_id"]) for record in warnings] == [
        ("key not created by this rotation; left in place", legacy["id"])
    ]


def test_previous_version_holding_the_current_key_is_not_deleted(service, context):
    rotate(service, context)
    current = secret_key(service, CURRENT)
    client("secretsmanager").put_secret_value(
        SecretId=service.secret_arn, SecretString=json.dumps(current), VersionStages=[PREVIOUS]
    )

    token = rotate(service, context)

    assert_rotated(service, token, previous_id=current["id"])


def test_clients_are_created_once_per_container(service, context):
    rotate(service, context)
    rotate(service, context)

    assert handler._session.cache_info().currsize == 1
    assert handler._client.cache_info().currsize == 3  # secretsmanager, apigateway, ssm
    assert handler._client.cache_info().hits > 0


def test_settings_read_space_separated_usage_plans():
    environ = {
        "SSM_PARAMETER_NAME": "p",
        "SSM_KMS_KEY_ID": "k",
        "ROTATION_GRACE_HOURS": "24",
        "USAGE_PLAN_IDS": "  plan1   plan2 ",
    }

    assert handler.load_settings(environ).usage_plan_ids == ("plan1", "plan2")


def test_key_config_copies_cost_tags():
    tags = [{"Key": "KeyName", "Value": " app "}, {"Key": "Project", "Value": "p"}, {"Key": "Owner", "Value": "x"}]

    assert handler.key_config(tags, ("plan1",)) == handler.KeyConfig("app", ("plan1",), {"Project": "p"})


# --- The grace window in time, and the bound on live keys -------------------------------------------------------


def test_back_to_back_rotations_keep_the_key_published_seconds_earlier(service, context):
    """An operator's rotate-secret right after a scheduled rotation: the key replaced seconds ago keeps working, and
    so does the one before it (replaced just as recently, though created a whole period earlier)."""
    rotate(service, context)
    first = secret_key(service, CURRENT)
    rotate(service, context)
    second = secret_key(service, CURRENT)

    token = rotate(service, context, wait=BACK_TO_BACK)

    current = assert_rotated(service, token, previous_id=second["id"], other_keys={first["id"]})
    keys = api_keys()
    assert all(keys[key_id]["enabled"] for key_id in (first["id"], second["id"], current["id"]))
    assert all(in_usage_plan(plan, first["id"]) for plan in service.usage_plan_ids)


@pytest.mark.parametrize(
    ("wait", "kept"),
    [(GRACE - timedelta(seconds=1), True), (GRACE, False), (GRACE + timedelta(hours=1), False)],
    ids=["a-second-before-the-grace-ends", "at-the-grace", "after-the-grace"],
)
def test_a_rotation_after_the_grace_deletes_every_replaced_key(service, context, wait, kept):
    rotate(service, context)
    first = secret_key(service, CURRENT)
    rotate(service, context)
    second = secret_key(service, CURRENT)
    rotate(service, context, wait=BACK_TO_BACK)  # keeps the first key: it was replaced seconds ago
    third = secret_key(service, CURRENT)

    token = rotate(service, context, wait=wait)

    replaced = {first["id"], second["id"]} if kept else set()
    assert_rotated(service, token, previous_id=third["id"], other_keys=replaced)


def test_a_key_is_never_deleted_within_the_grace_of_its_replacement(service, context):
    """Rotations at irregular intervals, against a model of the rule: a createSecret that starts at least the grace
    after the last publication deletes every replaced key, an earlier one none. The model checks the invariant
    (a key replaced at r lives until at least r + grace) and that keys do not outlive the rule."""
    hours = [0, 720, 0.01, 1, 23, 0.5, 30, 2, 720, 0, 25, 12, 11.9, 12.2, 0.1]
    alive, replaced_at, published_at, current = set(), {}, None, None
    for wait in hours:
        token = start_rotation(service.secret_arn, wait=timedelta(hours=wait))
        started = CLOCK.now()
        if published_at is not None and started - published_at >= GRACE:
            alive = {current}
        run_steps(service, token, context)
        new = secret_key(service, CURRENT)["id"]
        if current is not None:
            replaced_at[current] = started
        alive.add(new)
        current, published_at = new, started

        assert keys_of(service.secret_arn) == alive
        assert {key for key, at in replaced_at.items() if CLOCK.now() < at + GRACE} <= alive
        assert len(alive) <= handler.MAX_LIVE_KEYS
    assert_rotated(
        service, token, previous_id=next(key for key in alive if replaced_at.get(key) == started), other_keys=alive
    )


def test_the_eleventh_live_key_is_refused_and_a_retry_after_the_grace_succeeds(service, context, capsys):
    rotate(service, context)
    for _ in range(handler.MAX_LIVE_KEYS - 1):
        rotate(service, context, wait=BACK_TO_BACK)
    assert len(keys_of(service.secret_arn)) == handler.MAX_LIVE_KEYS
    current = secret_key(service, CURRENT)
    before = api_keys()
    token = start_rotation(service.secret_arn, wait=BACK_TO_BACK)

    with pytest.raises(handler.TooManyLiveKeys) as raised:
        run_step(service, "createSecret", token, context)

    assert str(raised.value).startswith(
        f"10 API keys of {service.secret_arn} are live (the current key and 9 in their grace window of 1 day, "
        "0:00:00); a new one would exceed the cap of 10. A retry succeeds once the first leaves its grace window, at "
    )
    assert api_keys() == before
    assert parameter()[0] == current["value"]
    assert stored_key_or_none(service, token) is None
    CLOCK.advance(GRACE)
    run_steps(service, token, context)  # Secrets Manager's retry of the same rotation
    assert_rotated(service, token, previous_id=current["id"])


def test_a_key_of_an_abandoned_rotation_goes_after_its_grace(service, context):
    rotate(service, context)
    rotate(service, context)
    second = secret_key(service, CURRENT)
    abandoned = start_rotation(service.secret_arn)
    run_step(service, "createSecret", abandoned, context)
    abandoned_key = stored_key(service, abandoned)["id"]
    client("secretsmanager").update_secret_version_stage(  # an operator gives up on that rotation
        SecretId=service.secret_arn, VersionStage=PENDING, RemoveFromVersionId=abandoned
    )

    token = rotate(service, context, wait=GRACE)

    assert abandoned_key not in api_keys()
    assert_rotated(service, token, previous_id=second["id"])


def stored_key_or_none(service, token):
    """The JSON the token's version holds, or None when it holds no value yet."""
    try:
        return stored_key(service, token)
    except ClientError:
        return None


# --- Idempotency and retries -------------------------------------------------------------------------------------


def test_every_step_run_twice_converges(service, context):
    rotate(service, context)
    previous = secret_key(service, CURRENT)

    with record_calls() as calls:
        token = start_rotation(service.secret_arn)
        for step in STEPS:
            run_step(service, step, token, context)
            run_step(service, step, token, context)

    assert calls.count("CreateApiKey") == 1
    assert calls.count("PutSecretValue") == 1
    assert calls.count("UpdateSecretVersionStage") == 1
    assert_rotated(service, token, previous_id=previous["id"])


# Every AWS call of the third scheduled rotation (which has a previous key to retire), by step and occurrence, in
# order. No GetApiKeys: the keys are found from the secret's versions.
FAILURE_POINTS = [
    ("createSecret", "DescribeSecret", 1),
    ("createSecret", "GetSecretValue", 1),  # is the pending version stored already?
    ("createSecret", "ListSecretVersionIds", 1),
    ("createSecret", "GetSecretValue", 2),  # the first version: the previous key
    ("createSecret", "GetSecretValue", 3),  # the second: the current key, never to be retired
    ("createSecret", "GetParameter", 1),  # when the previous key was replaced
    ("createSecret", "GetApiKey", 1),  # the previous key's tags and createdDate
    ("createSecret", "DeleteApiKey", 1),
    ("createSecret", "CreateApiKey", 1),
    ("createSecret", "PutSecretValue", 1),
    ("createSecret", "CreateUsagePlanKey", 1),
    ("createSecret", "CreateUsagePlanKey", 2),
    ("setSecret", "DescribeSecret", 1),
    ("testSecret", "DescribeSecret", 1),
    ("testSecret", "GetSecretValue", 1),
    ("testSecret", "GetApiKey", 1),
    ("testSecret", "GetUsagePlans", 1),
    ("finishSecret", "DescribeSecret", 1),
    ("finishSecret", "GetSecretValue", 1),
    ("finishSecret", "PutParameter", 1),
    ("finishSecret", "UpdateSecretVersionStage", 1),
]


def test_failure_points_are_every_call_of_a_rotation(service, context):
    """Keeps FAILURE_POINTS complete: a call added to the handler must be added to the failure tests."""
    rotate(service, context)
    rotate(service, context)
    token = start_rotation(service.secret_arn)

    recorded = []
    for step in STEPS:
        with record_calls() as calls:
            invoke(service, step, token, context)
        recorded += [(step, operation, calls[: index + 1].count(operation)) for index, operation in enumerate(calls)]

    assert recorded == FAILURE_POINTS


# A failed read changed nothing, so only writes also fail "after": AWS did the change but the answer was lost.
WRITES = {
    "DeleteApiKey",
    "CreateApiKey",
    "CreateUsagePlanKey",
    "PutSecretValue",
    "PutParameter",
    "UpdateSecretVersionStage",
}
FAILURES = [(*point, "before") for point in FAILURE_POINTS] + [
    (*point, "after") for point in FAILURE_POINTS if point[1] in WRITES
]


@pytest.mark.parametrize(
    ("step", "operation", "occurrence", "when"),
    FAILURES,
    ids=[f"{step}-{operation}-{occurrence}-{when}" for step, operation, occurrence, when in FAILURES],
)
def test_retry_after_a_failure_at_any_call_converges(service, context, capsys, step, operation, occurrence, when):
    rotate(service, context)
    rotate(service, context)
    previous = secret_key(service, CURRENT)
    token = start_rotation(service.secret_arn)

    for current_step in STEPS:
        if current_step == step:
            with fail_once(operation, occurrence, when), pytest.raises(ClientError, match="injected failure"):
                run_step(service, current_step, token, context)
            break
        run_step(service, current_step, token, context)
    run_steps(service, token, context)  # Secrets Manager retries the rotation with the same token

    # CreateApiKey's answer lost: no version names that key, so it stays, harmless (in no usage plan) and tagged.
    orphans = set(api_keys()) - {secret_key(service, CURRENT)["id"], previous["id"]}
    if (operation, when) == ("CreateApiKey", "after"):
        (orphan,) = orphans
        assert api_keys()[orphan]["tags"]["RotationToken"] == token
        assert not any(in_usage_plan(plan, orphan) for plan in service.usage_plan_ids)
    current = assert_rotated(service, token, previous_id=previous["id"], other_keys=orphans)
    assert orphans == set() or (operation, when) == ("CreateApiKey", "after")
    assert current["name"] == f"{KEY_NAME}-{token[:8]}"
    assert current["value"] not in capsys.readouterr().out


def test_usage_plan_already_holding_the_key_is_fine(service, context):
    token = start_rotation(service.secret_arn)

    with fail_once("CreateUsagePlanKey", when="after", code="ConflictException"):
        run_steps(service, token, context)

    assert_rotated(service, token)


def test_previous_key_deleted_concurrently_is_fine(service, context):
    rotate(service, context)
    rotate(service, context)
    second = secret_key(service, CURRENT)
    token = start_rotation(service.secret_arn)

    with fail_once("DeleteApiKey", when="after", code="NotFoundException"):
        run_steps(service, token, context)

    assert_rotated(service, token, previous_id=second["id"])


# --- What the handler refuses ------------------------------------------------------------------------------------


def test_unknown_token_is_refused(service, context):
    with pytest.raises(ValueError, match=r"Secret version 0+-0+ has no stage for rotation of secret arn:"):
        invoke(service, "createSecret", "00000000-0000", context)

    assert api_keys() == {}


def test_rotation_disabled_is_refused(service, context):
    client("secretsmanager").cancel_rotate_secret(SecretId=service.secret_arn)
    token = start_rotation(service.secret_arn)

    with pytest.raises(ValueError, match=f"Secret {service.secret_arn} is not enabled for rotation"):
        invoke(service, "createSecret", token, context)

    assert api_keys() == {}


def test_version_neither_pending_nor_current_is_refused(service, context):
    old_token = rotate(service, context)
    rotate(service, context)
    assert version_stages(service)[old_token] == [PREVIOUS]

    with pytest.raises(ValueError, match=f"Secret version {old_token} not set as AWSPENDING for rotation"):
        invoke(service, "createSecret", old_token, context)


def test_unknown_step_is_refused_before_any_aws_call(service, context):
    token = start_rotation(service.secret_arn)

    with record_calls() as calls, pytest.raises(ValueError) as raised:
        invoke(service, "rotateSecret", token, context)

    assert str(raised.value) == (
        "Unknown rotation step 'rotateSecret' (expected one of createSecret, setSecret, testSecret, finishSecret)"
    )
    assert calls == []


@pytest.mark.parametrize("step", STEPS)
def test_already_current_token_changes_nothing(service, context, step):
    token = rotate(service, context)
    keys = api_keys()

    with record_calls() as calls:
        assert invoke(service, step, token, context) is None

    assert api_keys() == keys
    assert not {"CreateApiKey", "DeleteApiKey", "PutSecretValue", "UpdateSecretVersionStage"} & set(calls)
    assert_rotated(service, token)


def test_already_current_finish_heals_a_stale_parameter(service, context):
    token = rotate(service, context)
    client("ssm").put_parameter(Name=PARAMETER_NAME, Value="stale", Type="SecureString", Overwrite=True)

    invoke(service, "finishSecret", token, context)

    assert_rotated(service, token)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            lambda key, plans: client("apigateway").update_api_key(
                apiKey=key, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
            ),
            "is disabled",
        ),
        (
            lambda key, plans: client("apigateway").delete_usage_plan_key(usagePlanId=plans[1], keyId=key),
            "is not in usage plans: {plan}",
        ),
        (lambda key, plans: client("apigateway").delete_api_key(apiKey=key), "does not exist"),
    ],
    ids=["disabled", "not-in-plan", "deleted"],
)
def test_test_secret_refuses_an_unusable_key(service, context, spoil, message):
    token = start_rotation(service.secret_arn)
    run_step(service, "createSecret", token, context)
    pending = stored_key(service, token)
    spoil(pending["id"], service.usage_plan_ids)

    with pytest.raises(handler.PendingKeyInvalid) as raised:
        invoke(service, "testSecret", token, context)

    assert str(raised.value) == f"pending API key {pending['id']} " + message.format(plan=service.usage_plan_ids[1])
    assert parameter()[0] == "placeholder"


@pytest.mark.parametrize(
    ("variable", "value", "tag", "message"),
    [
        ("SSM_PARAMETER_NAME", " ", None, "environment variables not set: SSM_PARAMETER_NAME"),
        ("SSM_KMS_KEY_ID", " ", None, "environment variables not set: SSM_KMS_KEY_ID"),
        ("ROTATION_GRACE_HOURS", " ", None, "environment variables not set: ROTATION_GRACE_HOURS"),
        ("ROTATION_GRACE_HOURS", "0", None, "ROTATION_GRACE_HOURS must be a whole number of hours >= 1, got '0'"),
        ("ROTATION_GRACE_HOURS", "1.5", None, "ROTATION_GRACE_HOURS must be a whole number of hours >= 1, got '1.5'"),
        (None, None, "KeyName", "secret tags missing or empty: KeyName"),
        ("USAGE_PLAN_IDS", " ", None, "environment variables not set: USAGE_PLAN_IDS"),
    ],
)
def test_misconfiguration_is_refused_before_any_key_exists(
    service, context, monkeypatch, variable, value, tag, message
):
    if variable:
        monkeypatch.setenv(variable, value)
    if tag:
        client("secretsmanager").tag_resource(SecretId=service.secret_arn, Tags=[{"Key": tag, "Value": ""}])
    token = start_rotation(service.secret_arn)

    with pytest.raises(handler.ConfigError) as raised:
        invoke(service, "createSecret", token, context)

    assert str(raised.value) == message
    assert api_keys() == {}


# --- Cleanup for Terraform -----------------------------------------------------------------------------------------

OTHER_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{DEFAULT_ACCOUNT_ID}:secret:kms-key-generator/other-AbCdEf"


def cleanup_event(secret_arn, action):
    """What aws_lambda_invocation sends for input `{"Cleanup": {"SecretId": secret_arn}}` on `action`."""
    resource_input = {"Cleanup": {"SecretId": secret_arn}}
    previous = None if action == "create" else resource_input
    return {**resource_input, "tf": {"action": action, "prev_input": previous}}


def invoke_cleanup(service, action, context):
    return handler.lambda_handler(cleanup_event(service.secret_arn, action), context)


def keys_of(secret_arn):
    return {key_id for key_id, key in api_keys().items() if key.get("tags", {}).get("RotationSecretArn") == secret_arn}


@pytest.fixture
def bystanders(aws):
    """Keys a cleanup must never touch: an untagged key, and one a rotation of another secret created."""
    apigateway = client("apigateway")
    untagged = apigateway.create_api_key(name="someone-elses-key", enabled=True)
    other = apigateway.create_api_key(name="other-secret-key", tags={"RotationSecretArn": OTHER_SECRET_ARN})
    return {untagged["id"], other["id"]}


def test_delete_cleanup_removes_exactly_the_rotations_keys(service, bystanders, context):
    rotate(service, context)
    rotate(service, context)
    assert len(keys_of(service.secret_arn)) == 2

    assert invoke_cleanup(service, "delete", context) == {"deleted": 2}

    assert set(api_keys()) == bystanders


def test_delete_cleanup_mid_rotation_removes_the_pending_key_too(service, bystanders, context):
    rotate(service, context)
    rotate(service, context)
    token = start_rotation(service.secret_arn)
    run_step(service, "createSecret", token, context)
    pending = stored_key(service, token)["id"]
    assert pending in keys_of(service.secret_arn)

    assert invoke_cleanup(service, "delete", context) == {"deleted": 2}

    assert set(api_keys()) == bystanders


def test_delete_cleanup_again_or_before_any_rotation_deletes_nothing(service, bystanders, context):
    assert invoke_cleanup(service, "delete", context) == {"deleted": 0}
    rotate(service, context)
    assert invoke_cleanup(service, "delete", context) == {"deleted": 1}

    assert invoke_cleanup(service, "delete", context) == {"deleted": 0}
    assert set(api_keys()) == bystanders


def test_key_deleted_concurrently_is_not_counted(service, context):
    rotate(service, context)
    rotate(service, context)

    with fail_once("DeleteApiKey", when="after", code="NotFoundException"):
        assert invoke_cleanup(service, "delete", context) == {"deleted": 1}

    assert api_keys() == {}


def test_delete_cleanup_reads_every_page_of_versions_and_lists_no_keys(service, bystanders, context):
    """moto returns every version in one page, so ListSecretVersionIds is split here: one version per page."""
    rotate(service, context)
    rotate(service, context)
    original = BaseClient._make_api_call
    listings, operations = [], []

    def call(botocore_client, operation, params):
        operations.append(operation)
        result = original(botocore_client, operation, params)
        if operation != "ListSecretVersionIds":
            return result
        listings.append(params)
        page = int(params.get("NextToken") or 0)
        following = {"NextToken": str(page + 1)} if page + 1 < len(result["Versions"]) else {"NextToken": ""}
        return {**result, "Versions": result["Versions"][page : page + 1], **following}

    with mock.patch.object(BaseClient, "_make_api_call", call):
        assert invoke_cleanup(service, "delete", context) == {"deleted": 2}

    expected = {"SecretId": service.secret_arn, "IncludeDeprecated": True}
    assert listings == [expected, {**expected, "NextToken": "1"}]
    assert "GetApiKeys" not in operations
    assert set(api_keys()) == bystanders


def test_delete_cleanup_deletes_keys_kept_in_deprecated_versions(service, bystanders, context):
    rotate(service, context)
    rotate(service, context, wait=BACK_TO_BACK)
    rotate(service, context, wait=BACK_TO_BACK)
    assert len(keys_of(service.secret_arn)) == 3  # the first key's version has no label any more

    assert invoke_cleanup(service, "delete", context) == {"deleted": 3}

    assert set(api_keys()) == bystanders


def test_delete_cleanup_leaves_a_key_it_did_not_create(build, context):
    legacy = client("apigateway").create_api_key(name="legacy", enabled=True)
    service = build(secret_string=json.dumps({"id": legacy["id"], "value": legacy["value"]}))
    rotate(service, context)

    assert invoke_cleanup(service, "delete", context) == {"deleted": 1}

    assert set(api_keys()) == {legacy["id"]}


@pytest.mark.parametrize("action", ["create", "update"])
def test_create_and_update_cleanups_change_nothing(service, bystanders, context, action):
    rotate(service, context)
    token = rotate(service, context)
    keys = api_keys()
    previous_id = secret_key(service, PREVIOUS)["id"]

    with record_calls() as calls:
        assert invoke_cleanup(service, action, context) == {"deleted": 0}

    assert calls == []
    assert api_keys() == keys
    assert_rotated(service, token, previous_id=previous_id, other_keys=bystanders)


BAD_CLEANUP_EVENTS = {
    "no-tf": ({"Cleanup": {"SecretId": OTHER_SECRET_ARN}}, 'cleanup event needs the "tf" object'),
    "no-cleanup": ({"tf": {"action": "delete", "prev_input": None}}, 'cleanup event needs "Cleanup"'),
    "cleanup-not-object": ({"Cleanup": OTHER_SECRET_ARN, "tf": {"action": "delete"}}, 'cleanup event needs "Cleanup"'),
    "tf-not-object": ({"Cleanup": {"SecretId": OTHER_SECRET_ARN}, "tf": "delete"}, 'needs the "tf" object'),
    "no-action": ({"Cleanup": {"SecretId": OTHER_SECRET_ARN}, "tf": {}}, "tf.action must be one of"),
    "unknown-action": (
        {"Cleanup": {"SecretId": OTHER_SECRET_ARN}, "tf": {"action": "read"}},
        "tf.action must be one of create, update, delete, got 'read'",
    ),
    "no-secret-id": ({"Cleanup": {}, "tf": {"action": "delete"}}, "Cleanup.SecretId must be the secret's full ARN"),
    "secret-name": (
        {"Cleanup": {"SecretId": "kms-key-generator/api-key"}, "tf": {"action": "delete"}},
        "Cleanup.SecretId must be the secret's full ARN (its keys' tag), got 'kms-key-generator/api-key'",
    ),
    "not-a-secret-arn": (
        {"Cleanup": {"SecretId": FUNCTION_ARN}, "tf": {"action": "delete"}},
        "Cleanup.SecretId must be",
    ),
}


@pytest.mark.parametrize(("event", "message"), BAD_CLEANUP_EVENTS.values(), ids=BAD_CLEANUP_EVENTS.keys())
def test_malformed_cleanup_event_is_refused_before_any_aws_call(bystanders, context, event, message):
    with record_calls() as calls, pytest.raises(ValueError) as raised:
        handler.lambda_handler(event, context)

    assert message in str(raised.value)
    assert calls == []
    assert set(api_keys()) == bystanders


# --- Logs -------------------------------------------------------------------------------------------------------


def test_logs_are_structured_and_never_contain_a_key_value(service, context, capsys):
    tokens = [rotate(service, context) for _ in range(2)]
    token = start_rotation(service.secret_arn)
    with fail_once("PutParameter"), pytest.raises(ClientError):
        run_steps(service, token, context)
    run_steps(service, token, context)
    tokens.append(token)

    keys = [stored_key(service, token) for token in tokens]
    out = capsys.readouterr().out
    assert [key["id"] for key in keys if key["value"] in out] == []
    records = [json.loads(line) for line in out.splitlines()]
    assert {record["secret_arn"] for record in records} == {service.secret_arn}
    assert {(record["step"], record["token"]) for record in records} == {(s, t) for s in STEPS for t in tokens}
    assert [record["key_id"] for record in records if record["message"] == "key created"] == [k["id"] for k in keys]
    (failure,) = [record for record in records if record["level"] == "ERROR"]
    assert (failure["message"], failure["step"], failure["error_code"]) == (
        "rotation step failed",
        "finishSecret",
        "InternalFailure",
    )


def test_cleanup_logs_the_count_and_key_ids_never_a_value(service, context, capsys):
    rotate(service, context)
    rotate(service, context)
    keys = api_keys()
    capsys.readouterr()

    invoke_cleanup(service, "create", context)
    invoke_cleanup(service, "delete", context)
    with pytest.raises(ValueError):
        handler.lambda_handler({"Cleanup": {"SecretId": service.secret_arn}}, context)

    out = capsys.readouterr().out
    assert [key_id for key_id, key in keys.items() if key["value"] in out] == []
    records = [json.loads(line) for line in out.splitlines()]
    assert [(record["level"], record["message"], record.get("action")) for record in records] == [
        ("INFO", "nothing to clean up", "create"),
        ("INFO", "keys deleted", "delete"),
        ("ERROR", "cleanup failed", None),
    ]
    assert {record.get("secret_arn") for record in records[:2]} == {service.secret_arn}
    assert (records[1]["deleted"], set(records[1]["key_ids"])) == (2, set(keys))
    assert records[2]["error_type"] == "ValueError"
