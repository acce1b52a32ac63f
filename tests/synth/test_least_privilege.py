"""The key-factory role can do its job and nothing more, proven by evaluating the synthesized policies.

Each policy is read from the synthesized JSON (references substituted: the service's account is
`tests.support.iam.ACCOUNT`) and decided by the offline IAM evaluator `local_aws.apigw.policy`, KMS calls on
a key through `tests.support.iam.kms_allows`, which models KMS's rule: the key policy allows the role itself,
or allows the account (enabling IAM policies) and the role's IAM policy allows it; an explicit Deny wins.
Every rule has an allowed call and a refused one, so a policy that allows nothing fails as surely as one that
allows too much.

The keys the role creates carry the handler's own `key_policy(...)`; "foreign" keys are AWS's default key
policy (account root, `kms:*`) and the service's other keys exactly as synthesized (operations, SSM, secret,
tokens): none of them may be tagged, aliased, disabled, re-policied or deleted by the key factory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from local_aws.apigw.policy import Decision, Request, evaluate
from tests.support.iam import ACCOUNT, PARTITION, default_key_policy, kms_allows, policy_document, role_session
from tests.support.lambdas import load_handler
from tests.support.synth import Synth, only, resources

KEY_GENERATOR = "key-generator"
SYNTHS = ["synth", "variant", "hardened"]
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ACCOUNT = "999988887777"
# What KMS puts in CreateKey's request context when the handler calls it as it does: KMS fills these keys with
# the parameters' defaults when a request omits them (KMS Developer Guide, "AWS KMS condition keys").
CREATE_KEY_CONTEXT = {"kms:BypassPolicyLockoutSafetyCheck": False, "kms:MultiRegion": False, "kms:KeyOrigin": "AWS_KMS"}
KEY_ACTIONS_OF_THE_FACTORY = [
    "kms:TagResource",
    "kms:CreateAlias",
    "kms:EnableKeyRotation",
    "kms:ScheduleKeyDeletion",
    "kms:PutKeyPolicy",
]
NEVER_ALLOWED_KEY_ACTIONS = [
    "kms:DisableKey",
    "kms:UntagResource",
    "kms:CancelKeyDeletion",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:DisableKeyRotation",
    "kms:ReplicateKey",
    "kms:Sign",
]


@pytest.fixture(scope="module")
def handler() -> Any:
    return load_handler("kms_key_generator", "kms_key_generator_least_privilege")


@pytest.fixture(params=SYNTHS)
def stack(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


def region(synth: Synth) -> str:
    return synth.service["provider"]["aws"][0]["region"]


def role_name(synth: Synth) -> str:
    return only(synth.service, "aws_iam_role", KEY_GENERATOR)["name"]


def role_arn(synth: Synth) -> str:
    return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{role_name(synth)}"


def identity_policy(synth: Synth, account: str = ACCOUNT) -> dict[str, Any]:
    """The key factory's inline policy, with the service running in `account`."""
    rendered = only(synth.service, "aws_iam_role_policy", KEY_GENERATOR)["policy"]
    return policy_document(rendered, {"data.aws_caller_identity.current.account_id": account})


def key_arn(synth: Synth, key_id: str = KEY_ID, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:kms:{region(synth)}:{account}:key/{key_id}"


def alias_arn(synth: Synth, name: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:kms:{region(synth)}:{account}:alias/{name}"


def created_key_policy(synth: Synth, handler: Any) -> dict[str, Any]:
    """The policy the handler gives every key it creates in the service's account."""
    return handler.key_policy(PARTITION, ACCOUNT, role_arn(synth))


def service_key_policies(synth: Synth) -> dict[str, dict[str, Any]]:
    """The service's own KMS keys (operations, SSM, secret, tokens...), by logical name, as synthesized."""
    return {name: policy_document(key["policy"]) for name, key in resources(synth.service, "aws_kms_key").items()}


def identity_decision(synth: Synth, action: str, resource: str, context: dict[str, Any] | None = None) -> Decision:
    return evaluate([identity_policy(synth)], Request(action, resource, context=context or {}))


def ownership_claims(synth: Synth) -> dict[str, Any]:
    """The context most favourable to the role: the key already tagged as the service's (anyone who may tag can
    do that) and the request carrying the service's tags. Ownership must not follow from tags."""
    service = only(synth.service, "aws_lambda_function", KEY_GENERATOR)["environment"]["variables"]["SERVICE_NAME"]
    return {
        "aws:ResourceTag/CreatedBy": service,
        "aws:RequestTag/CreatedBy": service,
        "aws:RequestTag/Tenant": "acme",
        "aws:TagKeys": ["CreatedBy", "Tenant"],
    }


def on_key(synth: Synth, key_policy: dict[str, Any], action: str) -> bool:
    """Whether the key factory may call `action` on a key with `key_policy`; CreateAlias needs the alias too."""
    context = ownership_claims(synth)
    session = role_session(role_name(synth))
    allowed = kms_allows([identity_policy(synth)], key_policy, action, key_arn(synth), session, context)
    if action == "kms:CreateAlias":
        alias = Request(action, alias_arn(synth, "acme/payments"), context=context)
        allowed = allowed and evaluate([identity_policy(synth)], alias) is Decision.ALLOW
    return allowed


# --- the KMS model itself -------------------------------------------------------------------------------------


def test_model_root_statement_only_delegates_to_iam(synth):
    session = role_session(role_name(synth))
    allow_tag = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:TagResource", "Resource": "*"}],
    }
    deny_tag = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "kms:TagResource", "Resource": "*"}],
    }
    no_root = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    arn = key_arn(synth)
    assert kms_allows([allow_tag], default_key_policy(), "kms:TagResource", arn, session)
    assert not kms_allows([], default_key_policy(), "kms:TagResource", arn, session)
    assert not kms_allows([allow_tag], no_root, "kms:TagResource", arn, session)
    direct = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{role_name(synth)}"},
                "Action": "kms:TagResource",
                "Resource": "*",
            }
        ],
    }
    assert kms_allows([], direct, "kms:TagResource", arn, session)
    assert not kms_allows([deny_tag], direct, "kms:TagResource", arn, session)


# --- CreateKey ------------------------------------------------------------------------------------------------


def test_creates_keys_as_the_handler_asks(stack):
    assert identity_decision(stack, "kms:CreateKey", "*", CREATE_KEY_CONTEXT) is Decision.ALLOW


@pytest.mark.parametrize(
    "override",
    [
        {"kms:MultiRegion": True},
        {"kms:BypassPolicyLockoutSafetyCheck": True},
        {"kms:KeyOrigin": "EXTERNAL"},
        {"kms:KeyOrigin": "AWS_CLOUDHSM"},
        {"kms:KeyOrigin": "EXTERNAL_KEY_STORE"},
    ],
    ids=["multi_region", "lockout_bypass", "external_material", "cloudhsm", "external_key_store"],
)
def test_never_creates_multi_region_bypassing_or_external_keys(stack, override):
    assert identity_decision(stack, "kms:CreateKey", "*", {**CREATE_KEY_CONTEXT, **override}) is Decision.IMPLICIT_DENY


def test_cannot_tag_while_creating(stack):
    # Tags on CreateKey need kms:TagResource in IAM for every key: the handler tags afterwards, by key policy.
    claims = ownership_claims(stack)
    assert identity_decision(stack, "kms:TagResource", "*", claims) is Decision.IMPLICIT_DENY
    assert identity_decision(stack, "kms:TagResource", key_arn(stack), claims) is Decision.IMPLICIT_DENY
    assert identity_decision(stack, "kms:CreateKey", "*", {**CREATE_KEY_CONTEXT, **claims}) is Decision.ALLOW


# --- keys it created, and every other key ---------------------------------------------------------------------


@pytest.mark.parametrize("action", KEY_ACTIONS_OF_THE_FACTORY)
def test_manages_the_keys_it_created(stack, handler, action):
    assert on_key(stack, created_key_policy(stack, handler), action)


@pytest.mark.parametrize("action", KEY_ACTIONS_OF_THE_FACTORY + NEVER_ALLOWED_KEY_ACTIONS)
def test_cannot_touch_a_key_it_did_not_create(stack, action):
    assert not on_key(stack, default_key_policy(), action)


@pytest.mark.parametrize("action", KEY_ACTIONS_OF_THE_FACTORY + NEVER_ALLOWED_KEY_ACTIONS)
def test_cannot_touch_the_services_own_keys(stack, action):
    keys = service_key_policies(stack)
    assert keys, "the service has KMS keys of its own"
    assert [name for name, policy in keys.items() if on_key(stack, policy, action)] == []


@pytest.mark.parametrize("action", NEVER_ALLOWED_KEY_ACTIONS)
def test_cannot_disable_use_or_unalias_even_its_own_keys(stack, handler, action):
    assert not on_key(stack, created_key_policy(stack, handler), action)


def test_a_key_another_role_created_is_foreign(stack, handler):
    # The cross-account role of another service, or a second deployment, owns its keys: not this role.
    other_owner = handler.key_policy(PARTITION, ACCOUNT, f"arn:{PARTITION}:iam::{ACCOUNT}:role/someone-else")
    assert not on_key(stack, other_owner, "kms:ScheduleKeyDeletion")
    assert not on_key(stack, other_owner, "kms:TagResource")


def test_may_describe_keys_of_its_account_only(stack):
    assert identity_decision(stack, "kms:DescribeKey", key_arn(stack)) is Decision.ALLOW
    assert identity_decision(stack, "kms:DescribeKey", key_arn(stack, account=OTHER_ACCOUNT)) is Decision.IMPLICIT_DENY


def test_aliases_only_in_its_own_account(stack):
    assert identity_decision(stack, "kms:CreateAlias", alias_arn(stack, "acme/x")) is Decision.ALLOW
    other = alias_arn(stack, "acme/x", account=OTHER_ACCOUNT)
    assert identity_decision(stack, "kms:CreateAlias", other) is Decision.IMPLICIT_DENY


# --- cross-account roles --------------------------------------------------------------------------------------

VARIANT_ACCOUNTS = ["111122223333", "444455556666", "777788889999"]  # lambda.allowed_accounts + tenants'


def role_in(account: str, name: str) -> str:
    return f"arn:{PARTITION}:iam::{account}:role/{name}"


@pytest.mark.parametrize("account", VARIANT_ACCOUNTS)
def test_assumes_the_role_of_every_allowed_account(variant, account):
    assert identity_decision(variant, "sts:AssumeRole", role_in(account, "key-factory")) is Decision.ALLOW


@pytest.mark.parametrize(
    "target",
    [
        role_in(OTHER_ACCOUNT, "key-factory"),
        role_in("111122223333", "admin"),
        role_in("444455556666", "key-factory-x"),
        role_in("111122223333", "path/key-factory"),
        role_in(ACCOUNT, "key-factory"),
    ],
    ids=["other_account", "other_role", "longer_name", "other_path", "own_account"],
)
def test_assumes_no_other_role(variant, target):
    assert identity_decision(variant, "sts:AssumeRole", target) is not Decision.ALLOW


def test_never_assumes_its_own_accounts_role_even_when_listed(variant):
    # The service's account is known only at apply time: deployed in an allowed account, that one is excluded.
    listed = VARIANT_ACCOUNTS[0]
    policy = identity_policy(variant, account=listed)
    assert evaluate([policy], Request("sts:AssumeRole", role_in(listed, "key-factory"))) is Decision.DENY
    assert evaluate([policy], Request("sts:AssumeRole", role_in(VARIANT_ACCOUNTS[1], "key-factory"))) is Decision.ALLOW


@pytest.mark.parametrize("fixture", ["synth", "hardened"])
def test_no_allowed_accounts_no_role_to_assume(request, fixture):
    synth = request.getfixturevalue(fixture)
    variables = only(synth.service, "aws_lambda_function", KEY_GENERATOR)["environment"]["variables"]
    role = variables["CROSS_ACCOUNT_ROLE_NAME"]
    for account in (OTHER_ACCOUNT, "111122223333", ACCOUNT):
        assert identity_decision(synth, "sts:AssumeRole", role_in(account, role)) is Decision.IMPLICIT_DENY
    statements = identity_policy(synth)["Statement"]
    assert not [s for s in statements if any(a.startswith("sts:") for a in s["Action"])]


# --- API key tags ---------------------------------------------------------------------------------------------


def api_arn(synth: Synth, path: str, in_region: str | None = None) -> str:
    return f"arn:{PARTITION}:apigateway:{in_region or region(synth)}::{path}"


def test_reads_api_key_tags(stack):
    key = api_arn(stack, "/apikeys/k1a2b3c4d5")
    tags = api_arn(stack, "/tags/" + quote(key, safe=""))
    assert identity_decision(stack, "apigateway:GET", tags) is Decision.ALLOW
    assert identity_decision(stack, "apigateway:GET", api_arn(stack, "/tags/" + key)) is Decision.ALLOW


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/apikeys/k1a2b3c4d5"),
        ("GET", "/apikeys"),
        ("GET", "/usageplans"),
        ("POST", "/apikeys"),
        ("PUT", "/tags/x"),
        ("DELETE", "/tags/x"),
        ("PATCH", "/apikeys/k1a2b3c4d5"),
        ("DELETE", "/apikeys/k1a2b3c4d5"),
    ],
)
def test_never_reads_key_values_or_changes_api_gateway(stack, method, path):
    # GET /apikeys/<id>?includeValue=true returns a key's value; GetTags (GET /tags/<arn>) returns none.
    assert identity_decision(stack, f"apigateway:{method}", api_arn(stack, path)) is Decision.IMPLICIT_DENY


def test_reads_tags_in_its_own_region_only(stack):
    elsewhere = "ap-southeast-2"
    path = "/tags/" + quote(api_arn(stack, "/apikeys/k1", in_region=elsewhere), safe="")
    tags_elsewhere = api_arn(stack, path, in_region=elsewhere)
    assert identity_decision(stack, "apigateway:GET", tags_elsewhere) is Decision.IMPLICIT_DENY
