"""The KMS key generator handler end to end against moto: what it creates, what it refuses, how it fails.

Every failure test also checks the invariant the API promises: no usable key is left without its alias.
"""

import importlib
import importlib.util
import json
import sys
from unittest import mock

import kms_key_generator_handler as handler
import pytest
from botocore.client import BaseClient
from moto.core import DEFAULT_ACCOUNT_ID as OWN_ACCOUNT

pytestmark = pytest.mark.seconds(23)

# `lambda` is a keyword: the shared conftest is reached by the name pytest registered it under.
shared = importlib.import_module("tests.lambda.conftest")
make_event, kms_client, key_states, aliases = shared.make_event, shared.kms_client, shared.key_states, shared.aliases
fail_on, record_calls, internal_error = shared.fail_on, shared.record_calls, shared.internal_error
OTHER_ACCOUNT, REGION, CROSS_ACCOUNT_ROLE = shared.OTHER_ACCOUNT, shared.REGION, shared.CROSS_ACCOUNT_ROLE


# --- Happy paths ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_usage", "key_spec", "rotation"),
    [
        ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", True),
        ("SIGN_VERIFY", "ECC_NIST_P256", False),
        ("GENERATE_VERIFY_MAC", "HMAC_256", False),
        ("KEY_AGREEMENT", "ECC_NIST_P256", False),
    ],
)
def test_creates_aliased_tagged_key_for_each_usage(aws, context, key_usage, key_spec, rotation):
    result = handler.lambda_handler(make_event(KeyUsage=key_usage), context)

    kms = kms_client()
    metadata = kms.describe_key(KeyId="alias/team/app-key")["KeyMetadata"]
    assert result == {
        "KeyId": metadata["KeyId"],
        "KeyArn": metadata["Arn"],
        "AliasName": "alias/team/app-key",
        "Region": REGION,
        "Account": OWN_ACCOUNT,
        "KeyUsage": key_usage,
        "KeySpec": key_spec,
        "Replayed": False,
    }
    assert (metadata["KeyUsage"], metadata["KeySpec"], metadata["KeyState"]) == (key_usage, key_spec, "Enabled")
    assert metadata["Description"] == "Key for the app"
    assert kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"] is rotation
    tags = {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=metadata["KeyId"])["Tags"]}
    assert tags == {"CreatedBy": "kms-key-generator", "RequestId": context.aws_request_id, "Tenant": "operator"}
    assert list(key_states(kms)) == [metadata["KeyId"]]


@pytest.mark.parametrize(
    ("key_usage", "key_spec"),
    [
        ("ENCRYPT_DECRYPT", "RSA_3072"),
        ("SIGN_VERIFY", "RSA_4096"),
        ("SIGN_VERIFY", "ECC_SECG_P256K1"),
        ("GENERATE_VERIFY_MAC", "HMAC_512"),
        ("KEY_AGREEMENT", "ECC_NIST_P384"),
    ],
)
def test_creates_key_with_requested_spec_and_no_rotation_for_asymmetric_or_hmac(aws, context, key_usage, key_spec):
    result = handler.lambda_handler(make_event(KeyUsage=key_usage, KeySpec=key_spec), context)

    metadata = kms_client().describe_key(KeyId=result["KeyId"])["KeyMetadata"]
    assert (result["KeySpec"], metadata["KeySpec"], metadata["KeyUsage"]) == (key_spec, key_spec, key_usage)
    assert kms_client().get_key_rotation_status(KeyId=result["KeyId"])["KeyRotationEnabled"] is False


def test_accepts_alias_with_prefix_and_stores_it_once(aws, context):
    result = handler.lambda_handler(make_event(KeyAlias="alias/team/app-key"), context)

    assert result["AliasName"] == "alias/team/app-key"
    assert aliases(kms_client()) == {"alias/team/app-key": result["KeyId"]}


@pytest.mark.parametrize("description", ["", 'say "hi"\nline two\ttab', "clé ключ 鍵 🔑", "x" * 8192])
def test_stores_any_description_verbatim(aws, context, description):
    result = handler.lambda_handler(make_event(KeyDescription=description), context)

    assert kms_client().describe_key(KeyId=result["KeyId"])["KeyMetadata"]["Description"] == description


def test_finds_own_account_with_sts_when_context_has_no_arn(aws):
    bare_context = type("Context", (), {"aws_request_id": "req-1"})()

    result = handler.lambda_handler(make_event(), bare_context)

    assert result["Account"] == OWN_ACCOUNT
    assert f":{OWN_ACCOUNT}:key/" in result["KeyArn"]


def test_reuses_own_account_clients_across_invocations(aws, context):
    handler.lambda_handler(make_event(KeyAlias="first"), context)
    created = handler._client.cache_info().misses
    handler.lambda_handler(make_event(KeyAlias="second"), context)

    assert handler._client.cache_info().misses == created
    assert handler._client.cache_info().hits >= created
    assert handler._client.cache_info().currsize <= 3  # lookups, CreateKey's single attempt, setup calls


# --- Cross-account ------------------------------------------------------------------------------------------


def test_creates_key_in_allowed_other_account_through_assumed_role(aws, context, monkeypatch):
    monkeypatch.setenv("ALLOWED_ACCOUNTS", f"{OTHER_ACCOUNT}, 444455556666")

    with record_calls() as calls:
        result = handler.lambda_handler(make_event(Account=OTHER_ACCOUNT), context)

    assume_role = [params for operation, params in calls if operation == "AssumeRole"]
    assert assume_role == [
        {
            "RoleArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/{CROSS_ACCOUNT_ROLE}",
            "RoleSessionName": f"kms-key-generator-{context.aws_request_id}",
            "DurationSeconds": 900,
        }
    ]
    assert result["Account"] == OTHER_ACCOUNT
    assert result["KeyArn"].startswith(f"arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/")
    other = kms_client(account=OTHER_ACCOUNT)
    assert aliases(other) == {"alias/team/app-key": result["KeyId"]}
    assert key_states(kms_client()) == {}


def test_cross_account_without_role_name_is_internal_error(aws, context, monkeypatch):
    monkeypatch.setenv("ALLOWED_ACCOUNTS", OTHER_ACCOUNT)
    monkeypatch.setenv("CROSS_ACCOUNT_ROLE_NAME", "")

    with pytest.raises(handler.InternalError) as raised:
        handler.lambda_handler(make_event(Account=OTHER_ACCOUNT), context)

    assert str(raised.value) == internal_error(context)
    assert key_states(kms_client(account=OTHER_ACCOUNT)) == {}


# --- Bad input ----------------------------------------------------------------------------------------------------

BAD_EVENTS = [
    pytest.param([], "BadRequest: request must be a JSON object, got array", id="event-array"),
    pytest.param("{}", "BadRequest: request must be a JSON object, got string", id="event-string"),
    pytest.param(None, "BadRequest: request must be a JSON object, got null", id="event-null"),
    pytest.param(make_event(Extra=1), 'BadRequest: unknown fields: "Extra"', id="unknown-field"),
    pytest.param(
        make_event(KeyAlias=..., KeyDescription=...),
        "BadRequest: missing required fields: KeyAlias, KeyDescription",
        id="missing-fields",
    ),
    pytest.param(
        make_event(Account=123456789012), "BadRequest: Account: must be a string, got number", id="account-number"
    ),
    pytest.param(make_event(Account=None), "BadRequest: Account: must be a string, got null", id="account-null"),
    pytest.param(
        make_event(Account="12345"), 'BadRequest: Account: must be exactly 12 digits, got "12345"', id="account-short"
    ),
    pytest.param(
        make_event(Account="12345678901a"),
        'BadRequest: Account: must be exactly 12 digits, got "12345678901a"',
        id="account-letter",
    ),
    pytest.param(
        make_event(Account=OWN_ACCOUNT + "\n"),
        f'BadRequest: Account: must be exactly 12 digits, got "{OWN_ACCOUNT}\\n"',
        id="account-newline",
    ),
    pytest.param(
        make_event(Account="١٢٣٤٥٦٧٨٩٠١٢"),
        'BadRequest: Account: must be exactly 12 digits, got "\\u0661\\u0662\\u0663\\u0664\\u0665'
        '\\u0666\\u0667\\u0668\\u0669\\u0660\\u0661\\u0662"',
        id="account-non-ascii-digits",
    ),
    pytest.param(
        make_event(Account=OTHER_ACCOUNT),
        f"Forbidden: Account: {OTHER_ACCOUNT} is not allowed",
        id="account-not-allowed",
    ),
    pytest.param(
        make_event(Region="mars-north-1"),
        'BadRequest: Region: "mars-north-1" is not an AWS region where KMS is available',
        id="region-unknown",
    ),
    pytest.param(
        make_event(Region=""), 'BadRequest: Region: "" is not an AWS region where KMS is available', id="region-empty"
    ),
    pytest.param(
        make_event(Region=["us-east-1"]), "BadRequest: Region: must be a string, got array", id="region-array"
    ),
    pytest.param(
        make_event(Region="cn-north-1"),
        "BadRequest: Region: cn-north-1 is in partition aws-cn, this service runs in partition aws",
        id="region-other-partition",
    ),
    pytest.param(
        make_event(KeyUsage="encrypt_decrypt"),
        'BadRequest: KeyUsage: "encrypt_decrypt" is not one of ENCRYPT_DECRYPT, SIGN_VERIFY, '
        "GENERATE_VERIFY_MAC, KEY_AGREEMENT",
        id="usage-lowercase",
    ),
    pytest.param(
        make_event(KeyUsage="ENCAPSULATE_DECAPSULATE"),
        'BadRequest: KeyUsage: "ENCAPSULATE_DECAPSULATE" is not one of ENCRYPT_DECRYPT, SIGN_VERIFY, '
        "GENERATE_VERIFY_MAC, KEY_AGREEMENT",
        id="usage-not-offered",
    ),
    pytest.param(make_event(KeyUsage=True), "BadRequest: KeyUsage: must be a string, got boolean", id="usage-bool"),
    pytest.param(
        make_event(KeySpec="HMAC_256"),
        'BadRequest: KeySpec: "HMAC_256" is not valid for KeyUsage ENCRYPT_DECRYPT '
        "(valid: SYMMETRIC_DEFAULT, RSA_2048, RSA_3072, RSA_4096, SM2)",
        id="spec-wrong-pair",
    ),
    pytest.param(
        make_event(KeyUsage="KEY_AGREEMENT", KeySpec="ECC_SECG_P256K1"),
        'BadRequest: KeySpec: "ECC_SECG_P256K1" is not valid for KeyUsage KEY_AGREEMENT '
        "(valid: ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, SM2)",
        id="spec-secg-agreement",
    ),
    pytest.param(make_event(KeySpec=None), "BadRequest: KeySpec: must be a string, got null", id="spec-null"),
    pytest.param(
        make_event(KeySpec="SM2"),
        "BadRequest: KeySpec: SM2 is only available in China regions (aws-cn)",
        id="spec-sm2-outside-china",
    ),
    pytest.param(
        make_event(KeyAlias="alias/"),
        "BadRequest: KeyAlias: must not be empty after the alias/ prefix",
        id="alias-only-prefix",
    ),
    pytest.param(
        make_event(KeyAlias=""), "BadRequest: KeyAlias: must not be empty after the alias/ prefix", id="alias-empty"
    ),
    pytest.param(
        make_event(KeyAlias="my key"),
        "BadRequest: KeyAlias: \"my key\" may contain only letters, digits, '/', '_' and '-'",
        id="alias-space",
    ),
    pytest.param(
        make_event(KeyAlias="alias:foo"),
        "BadRequest: KeyAlias: \"alias:foo\" may contain only letters, digits, '/', '_' and '-'",
        id="alias-colon",
    ),
    pytest.param(
        make_event(KeyAlias="alias/aws/mine"),
        "BadRequest: KeyAlias: must not start with alias/aws/ (reserved for AWS managed keys)",
        id="alias-reserved",
    ),
    pytest.param(
        make_event(KeyAlias="aws/mine"),
        "BadRequest: KeyAlias: must not start with alias/aws/ (reserved for AWS managed keys)",
        id="alias-reserved-unprefixed",
    ),
    pytest.param(
        make_event(KeyAlias="a" * 251),
        "BadRequest: KeyAlias: must be at most 256 characters including the alias/ prefix, got 257",
        id="alias-too-long",
    ),
    pytest.param(make_event(KeyAlias=42), "BadRequest: KeyAlias: must be a string, got number", id="alias-number"),
    pytest.param(
        make_event(KeyDescription="x" * 8193),
        "BadRequest: KeyDescription: must be at most 8192 characters, got 8193",
        id="description-too-long",
    ),
    pytest.param(
        make_event(KeyDescription=None), "BadRequest: KeyDescription: must be a string, got null", id="description-null"
    ),
    pytest.param(
        make_event(KeyDescription={"text": "hi"}),
        "BadRequest: KeyDescription: must be a string, got object",
        id="description-object",
    ),
]


@pytest.mark.parametrize(("event", "message"), BAD_EVENTS)
def test_rejects_bad_input_and_creates_nothing(aws, context, event, message):
    with pytest.raises(handler.RequestError) as raised:
        handler.lambda_handler(event, context)

    assert str(raised.value) == message
    for region in (REGION, "us-east-1"):
        assert kms_client(region).list_keys()["Keys"] == []


def test_rejects_region_outside_allowed_regions(aws, context, monkeypatch):
    monkeypatch.setenv("ALLOWED_REGIONS", "us-east-1, eu-central-1")

    with pytest.raises(handler.BadRequest) as raised:
        handler.lambda_handler(make_event(Region=REGION), context)

    assert str(raised.value) == f"BadRequest: Region: {REGION} is not allowed (allowed: eu-central-1, us-east-1)"
    assert kms_client().list_keys()["Keys"] == []


# --- Idempotency ------------------------------------------------------------------------------------------------


def test_rejects_taken_alias_without_naming_the_existing_key(aws, context):
    first = handler.lambda_handler(make_event(), context)

    with pytest.raises(handler.Conflict) as raised:
        handler.lambda_handler(make_event(KeyAlias="alias/team/app-key"), context)

    assert str(raised.value) == "Conflict: alias alias/team/app-key already exists"
    assert first["KeyId"] not in str(raised.value)
    assert key_states(kms_client()) == {first["KeyId"]: "Enabled"}


def test_checks_alias_before_creating_key(aws, context):
    handler.lambda_handler(make_event(), context)

    with record_calls() as calls, pytest.raises(handler.Conflict):
        handler.lambda_handler(make_event(), context)

    assert [operation for operation, _ in calls] == ["DescribeKey"]


def test_alias_taken_concurrently_is_conflict_and_discards_new_key(aws, context):
    """Another request wins the alias between our DescribeKey and CreateAlias."""
    original = BaseClient._make_api_call
    rival = {}

    def call(client, operation, params):
        if operation == "CreateAlias" and not rival:
            kms = kms_client()
            rival["KeyId"] = kms.create_key()["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=params["AliasName"], TargetKeyId=rival["KeyId"])
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call), pytest.raises(handler.Conflict) as raised:
        handler.lambda_handler(make_event(), context)

    assert str(raised.value) == "Conflict: alias alias/team/app-key already exists"
    states = key_states(kms_client())
    ours = [key_id for key_id in states if key_id != rival["KeyId"]]
    assert [states[key_id] for key_id in ours] == ["PendingDeletion"]
    assert aliases(kms_client()) == {"alias/team/app-key": rival["KeyId"]}


# --- Atomicity and error hygiene -----------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["CreateAlias", "EnableKeyRotation"])
def test_discards_key_when_setup_after_create_fails(aws, context, operation):
    with fail_on(operation), pytest.raises(handler.InternalError) as raised:
        handler.lambda_handler(make_event(), context)

    assert str(raised.value) == internal_error(context)
    kms = kms_client()
    assert list(key_states(kms).values()) == ["PendingDeletion"]
    assert aliases(kms) == {}


def test_failed_cleanup_is_logged_with_the_key_id(aws, context, capsys):
    with fail_on("CreateAlias", "ScheduleKeyDeletion"), pytest.raises(handler.InternalError):
        handler.lambda_handler(make_event(), context)

    (key_id,) = key_states(kms_client())
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cleanup = [record for record in records if record["message"] == "cleanup failed: key left without alias"]
    assert len(cleanup) == 1
    assert (cleanup[0]["key_id"], cleanup[0]["level"]) == (key_id, "ERROR")


@pytest.mark.parametrize("operation", ["DescribeKey", "CreateKey", "AssumeRole"])
def test_unexpected_aws_error_reaches_client_without_aws_text(aws, context, monkeypatch, capsys, operation):
    monkeypatch.setenv("ALLOWED_ACCOUNTS", OTHER_ACCOUNT)
    account = OTHER_ACCOUNT if operation == "AssumeRole" else OWN_ACCOUNT

    with fail_on(operation, code="AccessDeniedException", message="User arn:aws:iam::secret is not authorized"):
        with pytest.raises(handler.InternalError) as raised:
            handler.lambda_handler(make_event(Account=account), context)

    assert str(raised.value) == internal_error(context)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    logged = capsys.readouterr().out
    assert "AccessDeniedException" in logged and "is not authorized" in logged
    assert key_states(kms_client(account=account)) == {}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERVICE_NAME", ""),
        ("ALLOWED_ACCOUNTS", "123,not-an-account"),
        ("KEY_FACTORY_ROLE_ARN", ""),
        ("OPERATOR_SECRET_ARN", "not-an-arn"),
    ],
)
def test_misconfiguration_is_internal_error(aws, context, monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)

    with pytest.raises(handler.InternalError):
        handler.lambda_handler(make_event(), context)

    assert '"error_type": "ConfigError"' in capsys.readouterr().out
    assert kms_client().list_keys()["Keys"] == []


# --- Logging ----------------------------------------------------------------------------------------------------


def test_logs_one_json_object_per_line_with_request_id_and_outcome(aws, context, capsys):
    secret_description = "do-not-log: customer payroll key"
    result = handler.lambda_handler(make_event(KeyDescription=secret_description), context)
    with pytest.raises(handler.Conflict):
        handler.lambda_handler(make_event(KeyDescription=secret_description), context)
    with fail_on("CreateAlias"), pytest.raises(handler.InternalError):
        handler.lambda_handler(make_event(KeyAlias="other", KeyDescription=secret_description), context)

    output = capsys.readouterr().out
    records = [json.loads(line) for line in output.splitlines()]
    assert {record["request_id"] for record in records} == {context.aws_request_id}
    assert [record["outcome"] for record in records] == ["created", "rejected", "rolled_back", "error"]
    created = records[0]
    assert created["key_id"] == result["KeyId"]
    assert (created["alias"], created["account"], created["region"]) == ("alias/team/app-key", OWN_ACCOUNT, REGION)
    assert "do-not-log" not in output


# --- Container lifecycle ----------------------------------------------------------------------------------------


def test_import_reads_no_environment_and_creates_no_clients(monkeypatch):
    for name in (
        "SERVICE_NAME",
        "CROSS_ACCOUNT_ROLE_NAME",
        "ALLOWED_ACCOUNTS",
        "ALLOWED_REGIONS",
        "KEY_FACTORY_ROLE_ARN",
        "OPERATOR_API_KEY_ID",
    ):
        monkeypatch.delenv(name)
    spec = importlib.util.spec_from_file_location("kms_key_generator_handler_fresh", handler.__file__)
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)

    spec.loader.exec_module(fresh)

    assert fresh._session.cache_info().currsize == 0
    assert fresh._client.cache_info().currsize == 0
    assert fresh.kms_regions.cache_info().currsize == 0
    assert fresh._tenants_from_file.cache_info().currsize == 0
    assert fresh._API_KEY_TENANTS == {}
