"""Tenants against moto: who the caller is, where it may create keys, which aliases, what a 409 tells it, and
the policy every key is created with.

Tenant acme owns ACME_ACCOUNT and the prefix `acme/`; tenant initech owns INITECH_ACCOUNT and `initech/`; both
accounts are in ALLOWED_ACCOUNTS, so only the tenant rules keep them apart.
"""

import importlib
import json

import boto3
import kms_key_generator_handler as handler
import pytest
from moto.core import DEFAULT_ACCOUNT_ID as OWN_ACCOUNT

pytestmark = pytest.mark.seconds(19)

# `lambda` is a keyword: the shared conftest is reached by the name pytest registered it under.
shared = importlib.import_module("tests.lambda.conftest")
make_event, kms_client, key_states, aliases = shared.make_event, shared.kms_client, shared.key_states, shared.aliases
record_calls, internal_error, REGION = shared.record_calls, shared.internal_error, shared.REGION

ACME_ACCOUNT = "111122223333"
INITECH_ACCOUNT = "444455556666"
CROSS_ACCOUNT_ROLE = "kms-key-generator-cross-account"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{OWN_ACCOUNT}:secret:kms-key-generator/api-key-AbCdEf"
FORBIDDEN_CALLER = "Forbidden: the caller is not a known tenant"
TENANTS = {
    "acme": {"allowed_accounts": [ACME_ACCOUNT], "allowed_regions": [], "alias_prefix": "acme/"},
    "initech": {"allowed_accounts": [INITECH_ACCOUNT], "allowed_regions": [REGION], "alias_prefix": "initech/"},
    "hooli": {},
}


@pytest.fixture(autouse=True)
def two_tenants(tenants, monkeypatch):
    monkeypatch.setenv("ALLOWED_ACCOUNTS", f"{ACME_ACCOUNT},{INITECH_ACCOUNT}")
    tenants(TENANTS)


def as_tenant(tenant, **overrides):
    """A request through the token authorizer: API Gateway names the tenant."""
    account = {"acme": ACME_ACCOUNT, "initech": INITECH_ACCOUNT}.get(tenant, OWN_ACCOUNT)
    fields = {"Account": account, "KeyAlias": f"{tenant}/app-key", **overrides}
    return make_event(Caller={"ApiKeyId": "authorizerk", "TenantId": tenant}, **fields)


def with_api_key(api_key_id, **overrides):
    """A request with an `x-api-key`: API Gateway names only the key."""
    return make_event(Caller={"ApiKeyId": api_key_id, "TenantId": ""}, **overrides)


def api_key(**tags):
    """An API key (moto) with `tags`; its id."""
    return boto3.client("apigateway", region_name="us-east-1").create_api_key(name="k", tags=tags)["id"]


def tags_of(key_id, account=OWN_ACCOUNT):
    client = kms_client(account=account)
    return {tag["TagKey"]: tag["TagValue"] for tag in client.list_resource_tags(KeyId=key_id)["Tags"]}


def no_keys_anywhere():
    accounts = (OWN_ACCOUNT, ACME_ACCOUNT, INITECH_ACCOUNT)
    return all(key_states(kms_client(account=account)) == {} for account in accounts)


def refused(event, context, error=handler.Forbidden):
    """The request's error message, with every AWS call it made."""
    with record_calls() as calls, pytest.raises(error) as raised:
        handler.lambda_handler(event, context)
    return str(raised.value), [operation for operation, _ in calls]


# --- Identity ----------------------------------------------------------------------------------------------------


def test_authorizer_tenant_creates_in_its_account_tagged_with_its_id(aws, context):
    result = handler.lambda_handler(as_tenant("acme"), context)

    assert (result["Account"], result["AliasName"]) == (ACME_ACCOUNT, "alias/acme/app-key")
    assert aliases(kms_client(account=ACME_ACCOUNT)) == {"alias/acme/app-key": result["KeyId"]}
    assert tags_of(result["KeyId"], ACME_ACCOUNT)["Tenant"] == "acme"


def test_api_key_tagged_with_a_tenant_is_that_tenant_and_is_looked_up_once(aws, context):
    key_id = api_key(Tenant="initech", UsagePlan="general")

    with record_calls() as calls:
        first = handler.lambda_handler(with_api_key(key_id, Account=INITECH_ACCOUNT, KeyAlias="initech/a"), context)
        handler.lambda_handler(with_api_key(key_id, Account=INITECH_ACCOUNT, KeyAlias="initech/b"), context)

    assert [params for operation, params in calls if operation == "GetTags"] == [
        {"resourceArn": f"arn:aws:apigateway:us-east-1::/apikeys/{key_id}"}
    ]
    assert tags_of(first["KeyId"], INITECH_ACCOUNT)["Tenant"] == "initech"


def test_operator_by_static_key_id_needs_no_lookup(aws, context):
    with record_calls() as calls:
        result = handler.lambda_handler(make_event(KeyAlias="anything/at-all"), context)

    assert "GetTags" not in [operation for operation, _ in calls]
    assert tags_of(result["KeyId"])["Tenant"] == "operator"


def test_operator_by_rotation_tag(aws, context, monkeypatch):
    monkeypatch.delenv("OPERATOR_API_KEY_ID")
    monkeypatch.setenv("OPERATOR_SECRET_ARN", SECRET_ARN)
    key_id = api_key(RotationSecretArn=SECRET_ARN, RotationToken="t-1")

    result = handler.lambda_handler(with_api_key(key_id, Account=INITECH_ACCOUNT, KeyAlias="ops/key"), context)

    assert result["Account"] == INITECH_ACCOUNT  # the operator keeps the global account list
    assert tags_of(result["KeyId"], INITECH_ACCOUNT)["Tenant"] == "operator"


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param({}, id="untagged"),
        pytest.param({"Tenant": "umbrella"}, id="unknown-tenant"),
        pytest.param({"Tenant": "operator"}, id="tenant-tag-operator"),
        pytest.param({"RotationSecretArn": SECRET_ARN.replace("api-key", "other")}, id="other-rotation"),
    ],
)
def test_api_key_without_a_known_tenant_is_forbidden(aws, context, monkeypatch, tags):
    monkeypatch.setenv("OPERATOR_SECRET_ARN", SECRET_ARN)
    key_id = api_key(**tags)

    message, calls = refused(with_api_key(key_id, Account=OWN_ACCOUNT), context)

    assert message == FORBIDDEN_CALLER
    assert calls == ["GetTags"]
    assert no_keys_anywhere()


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(..., id="no-caller"),
        pytest.param({"ApiKeyId": "", "TenantId": ""}, id="empty-caller"),
        pytest.param({"ApiKeyId": "", "TenantId": "umbrella"}, id="unknown-tenant"),
        pytest.param({"ApiKeyId": "", "TenantId": "operator"}, id="operator-as-tenant-id"),
        pytest.param({"ApiKeyId": "nosuchkey1", "TenantId": ""}, id="deleted-key"),
    ],
)
def test_unknown_caller_is_forbidden_before_any_kms_call(aws, context, caller):
    message, calls = refused(make_event(Caller=caller), context)

    assert message == FORBIDDEN_CALLER
    assert set(calls) <= {"GetTags"}
    assert no_keys_anywhere()


def test_without_a_tenants_file_only_the_operator_is_known(aws, context, monkeypatch, tmp_path):
    monkeypatch.setattr(handler, "TENANTS_FILE", str(tmp_path / "absent" / "tenants.json"))

    assert refused(as_tenant("acme"), context)[0] == FORBIDDEN_CALLER
    assert handler.lambda_handler(make_event(), context)["Account"] == OWN_ACCOUNT


def test_malformed_tenants_file_is_internal_error(aws, context, tenants, capsys):
    tenants('{"acme": {"alias_prefix": "no-slash"}}')

    message, calls = refused(make_event(), context, handler.InternalError)

    assert message == internal_error(context)
    assert calls == []
    assert '"error_type": "ConfigError"' in capsys.readouterr().out


# --- Tenant rules ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account", [pytest.param(INITECH_ACCOUNT, id="other-tenants-account"), pytest.param(OWN_ACCOUNT, id="service")]
)
def test_tenant_cannot_create_outside_its_accounts(aws, context, account):
    message, calls = refused(as_tenant("acme", Account=account), context)

    assert message == f"Forbidden: Account: {account} is not allowed"
    assert calls == []
    assert no_keys_anywhere()


def test_tenant_cannot_use_another_tenants_prefix_and_nothing_is_looked_up(aws, context):
    message, calls = refused(as_tenant("acme", KeyAlias="alias/initech/app-key"), context)

    assert message == "Forbidden: KeyAlias: alias/initech/app-key is outside your alias prefix acme/"
    assert calls == []
    assert no_keys_anywhere()


def test_prefix_is_checked_before_any_kms_call_in_api_key_mode_too(aws, context):
    key_id = api_key(Tenant="acme")

    message, calls = refused(with_api_key(key_id, Account=ACME_ACCOUNT, KeyAlias="initech/app-key"), context)

    assert message == "Forbidden: KeyAlias: alias/initech/app-key is outside your alias prefix acme/"
    assert calls == ["GetTags"]


def test_tenant_without_accounts_gets_the_service_account_and_its_id_as_prefix(aws, context):
    result = handler.lambda_handler(as_tenant("hooli"), context)

    assert (result["Account"], result["AliasName"]) == (OWN_ACCOUNT, "alias/hooli/app-key")
    assert refused(as_tenant("hooli", KeyAlias="team/app-key"), context)[0] == (
        "Forbidden: KeyAlias: alias/team/app-key is outside your alias prefix hooli/"
    )


def test_tenant_regions_narrow_the_service_regions(aws, context):
    message, calls = refused(as_tenant("initech", Region="us-east-1"), context, handler.BadRequest)

    assert message == "BadRequest: Region: us-east-1 is not allowed (allowed: eu-west-1)"
    assert calls == []


def test_tenant_accounts_need_not_be_in_the_operators_list(aws, context, monkeypatch):
    monkeypatch.setenv("ALLOWED_ACCOUNTS", "")

    assert handler.lambda_handler(as_tenant("acme"), context)["Account"] == ACME_ACCOUNT
    assert refused(make_event(Account=ACME_ACCOUNT), context)[0] == f"Forbidden: Account: {ACME_ACCOUNT} is not allowed"


@pytest.mark.parametrize(
    ("event", "account", "tenant"),
    [
        pytest.param(make_event(), OWN_ACCOUNT, "operator", id="operator"),
        pytest.param(as_tenant("acme"), ACME_ACCOUNT, "acme", id="acme"),
        pytest.param(as_tenant("hooli", KeyUsage="SIGN_VERIFY"), OWN_ACCOUNT, "hooli", id="hooli"),
    ],
)
def test_every_key_is_tagged_with_its_tenant(aws, context, event, account, tenant):
    result = handler.lambda_handler(event, context)

    assert tags_of(result["KeyId"], account) == {
        "CreatedBy": "kms-key-generator",
        "RequestId": context.aws_request_id,
        "Tenant": tenant,
    }


# --- No oracle -----------------------------------------------------------------------------------------------------


def test_conflict_on_an_alias_someone_else_owns_names_no_key(aws, context):
    """The account's own admin made `alias/acme/app-key` outside the service: acme learns only that it is taken."""
    admin = kms_client(account=ACME_ACCOUNT)
    foreign = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.create_alias(AliasName="alias/acme/app-key", TargetKeyId=foreign)

    message, calls = refused(as_tenant("acme"), context, handler.Conflict)

    assert message == "Conflict: alias alias/acme/app-key already exists"
    assert foreign not in message
    assert "CreateKey" not in calls
    assert list(key_states(admin)) == [foreign]


# --- Key policy ---------------------------------------------------------------------------------------------------


def test_key_is_created_with_its_policy_and_no_tags_then_tagged(aws, context):
    with record_calls() as calls:
        result = handler.lambda_handler(make_event(), context)

    operations = [operation for operation, _ in calls]
    assert operations == ["DescribeKey", "CreateKey", "TagResource", "EnableKeyRotation", "CreateAlias"]
    create = dict(calls[1][1])
    assert json.loads(create.pop("Policy")) == handler.key_policy("aws", OWN_ACCOUNT, shared.KEY_FACTORY_ROLE_ARN)
    assert create == {
        "BypassPolicyLockoutSafetyCheck": False,
        "MultiRegion": False,
        "Origin": "AWS_KMS",
        "Description": "Key for the app",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeySpec": "SYMMETRIC_DEFAULT",
    }
    stored = json.loads(kms_client().get_key_policy(KeyId=result["KeyId"], PolicyName="default")["Policy"])
    assert stored == handler.key_policy("aws", OWN_ACCOUNT, shared.KEY_FACTORY_ROLE_ARN)


def test_key_in_another_account_is_owned_by_the_assumed_role(aws, context):
    with record_calls() as calls:
        handler.lambda_handler(as_tenant("acme", KeyUsage="GENERATE_VERIFY_MAC"), context)

    (create,) = [params for operation, params in calls if operation == "CreateKey"]
    owner = f"arn:aws:iam::{ACME_ACCOUNT}:role/{CROSS_ACCOUNT_ROLE}"
    assert json.loads(create["Policy"]) == handler.key_policy("aws", ACME_ACCOUNT, owner)
    assert "Tags" not in create


def test_key_factory_role_of_another_account_is_internal_error(aws, context, monkeypatch):
    monkeypatch.setenv("KEY_FACTORY_ROLE_ARN", f"arn:aws:iam::{ACME_ACCOUNT}:role/kms-key-generator-key-factory")

    message, calls = refused(make_event(), context, handler.InternalError)

    assert message == internal_error(context)
    assert calls == []
