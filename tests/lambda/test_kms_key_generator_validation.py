"""The handler's pure functions: request validation, settings, names. No AWS, not even a mocked one."""

import re
from unittest import mock

import botocore.session
import pytest
from botocore.client import BaseClient

import kms_key_generator_handler as handler

OWN_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111122223333"
REGIONS = {"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn"}


@pytest.fixture(autouse=True)
def no_aws_calls():
    """Prove purity: any AWS call fails the test."""
    with mock.patch.object(BaseClient, "_make_api_call", side_effect=AssertionError("AWS was called")):
        yield


def parse(partition="aws", allowed_regions=frozenset(), **fields):
    event = {
        "Account": OWN_ACCOUNT,
        "Region": "eu-west-1",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyAlias": "app",
        "KeyDescription": "",
        **fields,
    }
    return handler.parse_request(
        event,
        allowed_accounts=frozenset({OWN_ACCOUNT, OTHER_ACCOUNT}),
        allowed_regions=allowed_regions,
        regions=REGIONS,
        partition=partition,
    )


def bad_request(function, *args, **kwargs):
    with pytest.raises(handler.BadRequest) as raised:
        function(*args, **kwargs)
    return str(raised.value)


# --- Request parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_usage", "key_spec"),
    [("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"), ("SIGN_VERIFY", "ECC_NIST_P256"),
     ("GENERATE_VERIFY_MAC", "HMAC_256"), ("KEY_AGREEMENT", "ECC_NIST_P256")],
)
def test_defaults_key_spec_per_usage(key_usage, key_spec):
    assert parse(KeyUsage=key_usage).key_spec == key_spec


def test_returns_validated_request():
    request = parse(Account=OTHER_ACCOUNT, KeyUsage="SIGN_VERIFY", KeySpec="ML_DSA_65", KeyAlias="alias/a/b_c-d",
                    KeyDescription='quote " and\nnewline')

    assert request == handler.KeyRequest(
        account=OTHER_ACCOUNT, region="eu-west-1", key_usage="SIGN_VERIFY", key_spec="ML_DSA_65",
        alias="alias/a/b_c-d", description='quote " and\nnewline',
    )


def test_lists_at_most_five_unknown_fields_sorted():
    message = bad_request(parse, **{f"X{index}": 1 for index in range(7)})

    assert message == 'BadRequest: unknown fields: "X0", "X1", "X2", "X3", "X4"'


def test_quoted_input_in_messages_is_one_bounded_line():
    message = bad_request(parse, Region="x\n" * 500)

    assert "\n" not in message
    shown = '"' + "x\\n" * 25 + "x..."  # the first 77 characters of the JSON string, then an ellipsis
    assert message == f"BadRequest: Region: {shown} is not an AWS region where KMS is available"


# --- Field validators -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["app", "alias/app"])
def test_alias_gets_exactly_one_prefix(value):
    assert handler.validate_alias(value) == "alias/app"


def test_alias_may_be_256_characters_with_prefix():
    assert len(handler.validate_alias("a" * 250)) == 256


def test_alias_prefix_alone_is_not_reserved():
    assert handler.validate_alias("aws") == "alias/aws"


@pytest.mark.parametrize("description", ["", "x" * 8192, "ünïcödé\u2028\x00"])
def test_description_accepts_any_text_up_to_limit(description):
    assert handler.validate_description(description) == description


def test_account_must_be_allowed():
    with pytest.raises(handler.Forbidden) as raised:
        handler.validate_account("444455556666", frozenset({OWN_ACCOUNT}))

    assert str(raised.value) == "Forbidden: Account: 444455556666 is not allowed"


def test_region_may_be_narrowed_by_allow_list():
    assert handler.validate_region("us-east-1", REGIONS, frozenset({"us-east-1"}), "aws") == "us-east-1"
    assert bad_request(handler.validate_region, "eu-west-1", REGIONS, frozenset({"us-east-1"}), "aws") == (
        "BadRequest: Region: eu-west-1 is not allowed (allowed: us-east-1)"
    )


def test_sm2_is_valid_in_china_regions():
    assert handler.validate_key_spec("SM2", "KEY_AGREEMENT", "aws-cn") == "SM2"
    assert parse(partition="aws-cn", Region="cn-north-1", KeySpec="SM2").key_spec == "SM2"


def test_key_usage_message_lists_the_offered_usages():
    assert bad_request(handler.validate_key_usage, "") == (
        'BadRequest: KeyUsage: "" is not one of ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT'
    )


# --- Tables match what AWS documents ------------------------------------------------------------------------------


def test_key_usages_and_specs_are_ones_kms_defines():
    model = botocore.session.get_session().get_service_model("kms")
    offered_specs = {spec for specs in handler.KEY_SPECS_BY_USAGE.values() for spec in specs}

    assert set(handler.KEY_SPECS_BY_USAGE) <= set(model.shape_for("KeyUsageType").enum)
    assert offered_specs <= set(model.shape_for("KeySpec").enum)
    assert all(spec in handler.KEY_SPECS_BY_USAGE[usage] for usage, spec in handler.DEFAULT_KEY_SPEC.items())


def test_kms_regions_come_from_every_partition_in_endpoint_data():
    regions = handler.kms_regions()

    assert {regions["us-east-1"], regions["cn-north-1"], regions["us-gov-west-1"]} == {"aws", "aws-cn", "aws-us-gov"}
    assert "aws-global" not in regions
    assert not [region for region in regions if "fips" in region]


# --- Settings and names ---------------------------------------------------------------------------------------------


def test_settings_split_and_trim_lists():
    settings = handler.load_settings({
        "SERVICE_NAME": "svc",
        "CROSS_ACCOUNT_ROLE_NAME": "role",
        "ALLOWED_ACCOUNTS": f" {OTHER_ACCOUNT} ,,444455556666",
        "ALLOWED_REGIONS": "us-east-1,",
    })

    assert settings == handler.Settings(
        service_name="svc",
        cross_account_role_name="role",
        allowed_accounts=frozenset({OTHER_ACCOUNT, "444455556666"}),
        allowed_regions=frozenset({"us-east-1"}),
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "SERVICE_NAME is not set"),
     ({"SERVICE_NAME": "svc", "ALLOWED_ACCOUNTS": "12,abc"}, "ALLOWED_ACCOUNTS: not 12-digit account ids: 12, abc")],
)
def test_settings_reject_misconfiguration(environ, message):
    with pytest.raises(handler.ConfigError) as raised:
        handler.load_settings(environ)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("service", "request_id", "expected"),
    [("kms-key-generator", "c0ffee00-1234", "kms-key-generator-c0ffee00-1234"),
     ("svc", "id with spaces/and:colons#é", "svc-id-with-spaces-and-colons--"),
     ("svc", "x" * 100, "svc-" + "x" * 60)],
)
def test_role_session_name_fits_sts_rules(service, request_id, expected):
    name = handler.role_session_name(service, request_id)

    assert name == expected
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", name, re.ASCII)


def test_identity_comes_from_function_arn():
    context = type("Context", (), {"invoked_function_arn": "arn:aws-cn:lambda:cn-north-1:210987654321:function:f"})

    assert handler.own_identity(context) == handler.Identity(account="210987654321", partition="aws-cn")
