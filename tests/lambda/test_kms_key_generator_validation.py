"""The handler's pure functions: request validation, settings, tenants, key policy, budget arithmetic, names.
No AWS, not even a mocked one."""

import re
from unittest import mock

import botocore.session
import kms_key_generator_handler as handler
import pytest
from botocore.client import BaseClient

OWN_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111122223333"
REGIONS = {"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn"}
ROLE_ARN = f"arn:aws:iam::{OWN_ACCOUNT}:role/kms-key-generator-key-factory"
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{OWN_ACCOUNT}:secret:kms-key-generator/api-key-AbCdEf"


@pytest.fixture(autouse=True)
def no_aws_calls():
    """Prove purity: any AWS call fails the test."""
    with mock.patch.object(BaseClient, "_make_api_call", side_effect=AssertionError("AWS was called")):
        yield


def parse(partition="aws", allowed_regions=None, alias_prefix="", **fields):
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
        alias_prefix=alias_prefix,
    )


def bad_request(function, *args, **kwargs):
    with pytest.raises(handler.BadRequest) as raised:
        function(*args, **kwargs)
    return str(raised.value)


# --- Request parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_usage", "key_spec"),
    [
        ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"),
        ("SIGN_VERIFY", "ECC_NIST_P256"),
        ("GENERATE_VERIFY_MAC", "HMAC_256"),
        ("KEY_AGREEMENT", "ECC_NIST_P256"),
    ],
)
def test_defaults_key_spec_per_usage(key_usage, key_spec):
    assert parse(KeyUsage=key_usage).key_spec == key_spec


def test_returns_validated_request():
    request = parse(
        Account=OTHER_ACCOUNT,
        KeyUsage="SIGN_VERIFY",
        KeySpec="ML_DSA_65",
        KeyAlias="alias/a/b_c-d",
        KeyDescription='quote " and\nnewline',
    )

    assert request == handler.KeyRequest(
        account=OTHER_ACCOUNT,
        region="eu-west-1",
        key_usage="SIGN_VERIFY",
        key_spec="ML_DSA_65",
        alias="alias/a/b_c-d",
        description='quote " and\nnewline',
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
    settings = handler.load_settings(
        {
            "SERVICE_NAME": "svc",
            "CROSS_ACCOUNT_ROLE_NAME": "role",
            "ALLOWED_ACCOUNTS": f" {OTHER_ACCOUNT} ,,444455556666",
            "ALLOWED_REGIONS": "us-east-1,",
            "KEY_FACTORY_ROLE_ARN": f" {ROLE_ARN} ",
            "OPERATOR_API_KEY_ID": "abc123XYZ9",
            "OPERATOR_SECRET_ARN": SECRET_ARN,
        }
    )

    assert settings == handler.Settings(
        service_name="svc",
        cross_account_role_name="role",
        allowed_accounts=frozenset({OTHER_ACCOUNT, "444455556666"}),
        allowed_regions=frozenset({"us-east-1"}),
        key_factory_role_arn=ROLE_ARN,
        operator_api_key_id="abc123XYZ9",
        operator_secret_arn=SECRET_ARN,
    )


def test_settings_need_no_operator():
    settings = handler.load_settings({"SERVICE_NAME": "svc", "KEY_FACTORY_ROLE_ARN": ROLE_ARN})

    assert (settings.operator_api_key_id, settings.operator_secret_arn) == ("", "")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "SERVICE_NAME is not set"),
        ({"SERVICE_NAME": "svc", "ALLOWED_ACCOUNTS": "12,abc"}, "ALLOWED_ACCOUNTS: not 12-digit account ids: 12, abc"),
        ({"SERVICE_NAME": "svc"}, "KEY_FACTORY_ROLE_ARN: not an IAM role ARN: ''"),
        (
            {"SERVICE_NAME": "svc", "KEY_FACTORY_ROLE_ARN": "arn:aws:iam::123:role/x"},
            "KEY_FACTORY_ROLE_ARN: not an IAM role ARN: 'arn:aws:iam::123:role/x'",
        ),
        (
            {"SERVICE_NAME": "svc", "KEY_FACTORY_ROLE_ARN": ROLE_ARN, "OPERATOR_API_KEY_ID": "a/b"},
            "OPERATOR_API_KEY_ID: not an API key id: 'a/b'",
        ),
        (
            {"SERVICE_NAME": "svc", "KEY_FACTORY_ROLE_ARN": ROLE_ARN, "OPERATOR_SECRET_ARN": "my-secret"},
            "OPERATOR_SECRET_ARN: not a Secrets Manager secret ARN: 'my-secret'",
        ),
    ],
)
def test_settings_reject_misconfiguration(environ, message):
    with pytest.raises(handler.ConfigError) as raised:
        handler.load_settings(environ)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("service", "request_id", "expected"),
    [
        ("kms-key-generator", "c0ffee00-1234", "kms-key-generator-c0ffee00-1234"),
        ("svc", "id with spaces/and:colons#é", "svc-id-with-spaces-and-colons--"),
        ("svc", "x" * 100, "svc-" + "x" * 60),
    ],
)
def test_role_session_name_fits_sts_rules(service, request_id, expected):
    name = handler.role_session_name(service, request_id)

    assert name == expected
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", name, re.ASCII)


def test_identity_comes_from_function_arn():
    context = type("Context", (), {"invoked_function_arn": "arn:aws-cn:lambda:cn-north-1:210987654321:function:f"})

    assert handler.own_identity(context) == handler.Identity(
        account="210987654321", partition="aws-cn", region="cn-north-1"
    )


# --- Tenants: the policy file, who is calling, what it may do ----------------------------------------------------

ACME = handler.TenantPolicy(frozenset({OTHER_ACCOUNT}), frozenset({"eu-west-1"}), "acme/")
SETTINGS = handler.Settings(
    service_name="svc",
    cross_account_role_name="role",
    allowed_accounts=frozenset({OTHER_ACCOUNT, "444455556666"}),
    allowed_regions=frozenset(),
    key_factory_role_arn=ROLE_ARN,
    operator_api_key_id="opkey",
    operator_secret_arn=SECRET_ARN,
)


def test_tenants_file_lists_policies_with_defaults():
    tenants = handler.parse_tenants(
        '{"acme": {"allowed_accounts": ["111122223333"], "allowed_regions": ["eu-west-1"], "alias_prefix": "acme/"},'
        ' "initech": {}}'
    )

    assert tenants == {
        "acme": ACME,
        "initech": handler.TenantPolicy(frozenset(), frozenset(), "initech/"),
    }


def test_empty_tenants_file_means_no_tenants():
    assert handler.parse_tenants("{}") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "tenants.json: must be an object mapping tenant ids to policies"),
        ("{", "tenants.json: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ('{"Acme": {}}', "tenants.json: 'Acme' is not a valid tenant id (or is reserved)"),
        ('{"operator": {}}', "tenants.json: 'operator' is not a valid tenant id (or is reserved)"),
        ('{"acme": []}', "tenants.json: acme: must be an object"),
        ('{"acme": {"plan": "x"}}', "tenants.json: acme: unknown keys 'plan'"),
        (
            '{"acme": {"allowed_accounts": ["123"]}}',
            "tenants.json: acme: allowed_accounts must be a list of 12-digit account ids",
        ),
        (
            '{"acme": {"allowed_accounts": "111122223333"}}',
            "tenants.json: acme: allowed_accounts must be a list of 12-digit account ids",
        ),
        ('{"acme": {"allowed_regions": ["EU"]}}', "tenants.json: acme: allowed_regions must be a list of region names"),
        *[
            (json_text, "tenants.json: acme: alias_prefix must be an alias name ending with '/', without 'alias/'")
            for json_text in (
                '{"acme": {"alias_prefix": "acme"}}',
                '{"acme": {"alias_prefix": ""}}',
                '{"acme": {"alias_prefix": "alias/acme/"}}',
                '{"acme": {"alias_prefix": "aws/acme/"}}',
                '{"acme": {"alias_prefix": "/"}}',
                '{"acme": {"alias_prefix": "ac me/"}}',
            )
        ],
        (
            '{"acme": {"alias_prefix": "shared/"}, "initech": {"alias_prefix": "Shared/initech/"}}',
            "tenants.json: alias prefixes of acme and initech overlap",
        ),
    ],
)
def test_malformed_tenants_file_is_config_error(text, message):
    with pytest.raises(handler.ConfigError) as raised:
        handler.parse_tenants(text)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("event", "caller"),
    [
        ({"Caller": {"ApiKeyId": "k1", "TenantId": ""}}, handler.CallerRef("k1", "")),
        ({"Caller": {"ApiKeyId": "k1", "TenantId": "acme"}}, handler.CallerRef("k1", "acme")),
        ({}, handler.CallerRef("", "")),
        ({"Caller": "acme"}, handler.CallerRef("", "")),
        ({"Caller": {"ApiKeyId": 7, "TenantId": None}}, handler.CallerRef("", "")),
    ],
)
def test_caller_comes_from_the_template_field(event, caller):
    assert handler.parse_caller(event) == caller


def test_caller_needs_an_object_event():
    assert bad_request(handler.parse_caller, []) == "BadRequest: request must be a JSON object, got array"


def no_lookup(api_key_id):
    raise AssertionError(f"looked {api_key_id} up")


@pytest.mark.parametrize(
    ("caller", "tenant"),
    [
        (handler.CallerRef("", "acme"), "acme"),
        (handler.CallerRef("opkey", "acme"), "acme"),  # authorizer mode: the authorizer's tenant wins
        (handler.CallerRef("opkey", ""), "operator"),
    ],
)
def test_tenant_from_authorizer_or_operator_key_needs_no_lookup(caller, tenant):
    assert handler.resolve_tenant(caller, SETTINGS, {"acme": ACME}, no_lookup) == tenant


def test_tenant_of_other_keys_is_looked_up():
    assert handler.resolve_tenant(handler.CallerRef("k1", ""), SETTINGS, {"acme": ACME}, {"k1": "acme"}.get) == "acme"


@pytest.mark.parametrize(
    "caller",
    [
        handler.CallerRef("", ""),
        handler.CallerRef("", "initech"),
        handler.CallerRef("", "operator"),
        handler.CallerRef("unknown", ""),
        handler.CallerRef("k/../1", ""),
    ],
)
def test_unknown_caller_is_forbidden_naming_nothing(caller):
    with pytest.raises(handler.Forbidden) as raised:
        handler.resolve_tenant(caller, SETTINGS, {"acme": ACME}, {"k1": "acme"}.get)

    assert str(raised.value) == "Forbidden: the caller is not a known tenant"


@pytest.mark.parametrize(
    ("tags", "tenant"),
    [
        ({"Tenant": "acme", "UsagePlan": "general"}, "acme"),
        ({"Tenant": "initech"}, None),
        ({"Tenant": "operator"}, None),  # only the rotation's keys or the static key are the operator
        ({"RotationSecretArn": SECRET_ARN}, "operator"),
        ({"RotationSecretArn": SECRET_ARN.replace("api-key", "other")}, None),
        ({}, None),
    ],
)
def test_api_key_tags_name_the_tenant(tags, tenant):
    assert handler.api_key_tenant(tags, SECRET_ARN, {"acme": ACME}) == tenant


def test_rotation_tag_means_nothing_without_operator_secret():
    assert handler.api_key_tenant({"RotationSecretArn": SECRET_ARN}, "", {}) is None


def test_operator_keeps_the_global_rules():
    assert handler.scope_for("operator", {}, SETTINGS, OWN_ACCOUNT) == handler.Scope(
        "operator", frozenset({OWN_ACCOUNT, OTHER_ACCOUNT, "444455556666"}), None, ""
    )


def test_tenant_scope_defaults_to_own_account_and_global_regions():
    settings = handler.Settings(**{**SETTINGS.__dict__, "allowed_regions": frozenset({"us-east-1"})})
    tenants = {"initech": handler.TenantPolicy(frozenset(), frozenset(), "initech/")}

    assert handler.scope_for("initech", tenants, settings, OWN_ACCOUNT) == handler.Scope(
        "initech", frozenset({OWN_ACCOUNT}), frozenset({"us-east-1"}), "initech/"
    )


def test_tenant_accounts_are_its_own_and_its_regions_stay_within_the_service_regions():
    settings = handler.Settings(**{**SETTINGS.__dict__, "allowed_regions": frozenset({"us-east-1"})})
    tenants = {
        "acme": handler.TenantPolicy(frozenset({OTHER_ACCOUNT, "999988887777"}), frozenset({"eu-west-1"}), "acme/")
    }

    scope = handler.scope_for("acme", tenants, settings, OWN_ACCOUNT)

    assert scope == handler.Scope("acme", frozenset({OTHER_ACCOUNT, "999988887777"}), frozenset(), "acme/")
    assert bad_request(handler.validate_region, "eu-west-1", REGIONS, scope.allowed_regions, "aws") == (
        "BadRequest: Region: eu-west-1 is not allowed (allowed: none)"
    )


def test_alias_must_be_under_the_prefix():
    assert parse(alias_prefix="acme/", KeyAlias="acme/app").alias == "alias/acme/app"
    assert parse(alias_prefix="acme/", KeyAlias="alias/acme/a/b").alias == "alias/acme/a/b"
    for alias in ("initech/app", "alias/acme", "acme-x/app", "ACME/app"):
        with pytest.raises(handler.Forbidden) as raised:
            parse(alias_prefix="acme/", KeyAlias=alias)
        shown = alias if alias.startswith("alias/") else "alias/" + alias
        assert str(raised.value) == f"Forbidden: KeyAlias: {shown} is outside your alias prefix acme/"


def test_account_outside_scope_is_forbidden_before_anything_else_is_checked():
    with pytest.raises(handler.Forbidden) as raised:
        handler.parse_request(
            {"Account": "444455556666", "Region": "mars", "KeyUsage": "?", "KeyAlias": "x", "KeyDescription": 1},
            allowed_accounts=frozenset({OTHER_ACCOUNT}),
            allowed_regions=None,
            regions=REGIONS,
            partition="aws",
        )

    assert str(raised.value) == "Forbidden: Account: 444455556666 is not allowed"


def test_caller_field_is_not_an_unknown_field():
    assert parse(Caller={"ApiKeyId": "", "TenantId": "acme"}).alias == "alias/app"


# --- Key policy ------------------------------------------------------------------------------------------------


def test_key_policy_keeps_account_control_and_lets_the_owner_role_finish_its_key():
    policy = handler.key_policy("aws-cn", "210987654321", "arn:aws-cn:iam::210987654321:role/owner")

    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableRootAccess",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws-cn:iam::210987654321:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "KeyFactoryManagesThisKey",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws-cn:iam::210987654321:role/owner"},
                "Action": [
                    "kms:DescribeKey",
                    "kms:ListResourceTags",
                    "kms:TagResource",
                    "kms:CreateAlias",
                    "kms:EnableKeyRotation",
                    "kms:ScheduleKeyDeletion",
                    "kms:PutKeyPolicy",
                ],
                "Resource": "*",
            },
        ],
    }


def test_owner_is_the_key_factory_role_at_home_and_the_assumed_role_elsewhere():
    identity = handler.Identity(account=OWN_ACCOUNT, partition="aws", region="us-east-1")

    assert handler.owner_role_arn(SETTINGS, identity, OWN_ACCOUNT) == ROLE_ARN
    assert handler.owner_role_arn(SETTINGS, identity, OTHER_ACCOUNT) == f"arn:aws:iam::{OTHER_ACCOUNT}:role/role"


def test_key_factory_role_of_another_account_is_config_error():
    identity = handler.Identity(account="210987654321", partition="aws", region="us-east-1")

    with pytest.raises(handler.ConfigError):
        handler.owner_role_arn(SETTINGS, identity, "210987654321")


# --- Budget arithmetic -----------------------------------------------------------------------------------------------


def test_worst_case_of_attempts_adds_botocore_backoff():
    assert [handler.worst_case_seconds(n) for n in (0, 1, 2, 3)] == [0, 2, 5, 9]
    assert handler.worst_case_seconds(1, handler.CREATE_KEY_S) == 5


def test_create_key_needs_time_for_itself_every_setup_call_and_the_cleanup():
    assert handler.setup_operations("SYMMETRIC_DEFAULT") == ("TagResource", "EnableKeyRotation", "CreateAlias")
    assert handler.setup_operations("HMAC_256") == ("TagResource", "CreateAlias")
    assert handler.create_reserve_seconds("SYMMETRIC_DEFAULT") == 13
    assert handler.create_reserve_seconds("RSA_4096") == 11
    assert handler.MIN_CREATE_RESERVE_S == 11


@pytest.mark.parametrize(
    ("left", "reserve", "attempts"), [(20, 0, 3), (20, 11, 3), (20, 15, 2), (20, 15.5, 1), (20, 18.1, 0)]
)
def test_attempts_fit_the_time_left_after_the_reserve(monkeypatch, left, reserve, attempts):
    monkeypatch.setattr(handler, "_clock", lambda: 100.0)
    budget = handler.Budget(left + handler.SAFETY_MARGIN_S)

    assert budget.left() == left
    assert budget.attempts(reserve) == attempts


def test_budget_comes_from_the_context_or_api_gateways_limit(monkeypatch):
    monkeypatch.setattr(handler, "_clock", lambda: 0.0)
    context = type("Context", (), {"get_remaining_time_in_millis": lambda self: 14_000})()

    assert handler.Budget.from_context(context).left() == 13.5
    assert handler.Budget.from_context(object()).left() == 28.5


def test_budget_refuses_what_does_not_fit(monkeypatch):
    monkeypatch.setattr(handler, "_clock", lambda: 0.0)

    with pytest.raises(handler.DeadlineExceeded) as raised:
        handler.Budget(10).require(13, "to create the key")

    assert str(raised.value) == "9.50s left, 13.00s needed to create the key"
