"""The rotation role can touch only the API keys its own rotations create: proven by evaluating the synthesized
policy with the offline IAM evaluator (`local_aws/apigw/policy.py`), conditions included, never by matching text.

The policy is read from the session's synth as Terraform will send it: the `${jsonencode(...)}` expression is
parsed by `tests.support.iam.policy_document` and each reference replaced with a concrete value (the secret's
ARN, the partition, the configured usage plans' ids; any other reference a placeholder no request below names).
The request contexts are what API Gateway sets: `aws:RequestTag/<key>` and `aws:TagKeys` for the tags in a
CreateApiKey request, `aws:ResourceTag/<key>` for the tags of the key a GET or DELETE names; the collection
`/apikeys` has no tags.
For every rule, an allowed call and a refused one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from local_aws.apigw.policy import Decision, Request, evaluate
from tests.support.iam import policy_document
from tests.support.synth import Synth, only, ref

ROTATION = "api-key-rotation"
REGION = "us-east-1"
ACCOUNT = "123456789012"
API = f"arn:aws:apigateway:{REGION}::"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kms-key-generator/api-key-AbCdEf"
OTHER_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:other-service/api-key-GhIjKl"
PARAMETER_ARN = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/APIGateway/APIKeys/kms-key-generator"
OWN_KEY, TENANT_KEY = "own0key001", "acme0key01"
OWN_TAGS = {"aws:ResourceTag/RotationSecretArn": SECRET_ARN, "aws:ResourceTag/RotationToken": "t0k3n"}
TENANT_TAGS = {"aws:ResourceTag/Tenant": "acme", "aws:ResourceTag/UsagePlan": "default"}
# What the handler sends in CreateApiKey.
CREATE_TAGS = {"RotationToken": "t0k3n", "RotationSecretArn": SECRET_ARN, "Project": "p", "CostCategory": "c"}


# --- The synthesized policy, as AWS will receive it ----------------------------------------------------------


def _bare(reference: str) -> str:
    return reference.removeprefix("${").removesuffix("}")


def configured_plans(stack: dict) -> dict[str, str]:
    """{reference: id} for the usage plans the rotation attaches keys to: those in its `USAGE_PLAN_IDS`."""
    tag = only(stack, "aws_lambda_function", ROTATION)["environment"]["variables"]["USAGE_PLAN_IDS"]
    references = re.findall(r"aws_api_gateway_usage_plan\.[\w-]+\.id", tag)
    assert references, tag
    return {reference: f"plan{index:05d}" for index, reference in enumerate(references)}


def role_policy(stack: dict) -> dict:
    """The rotation role's inline policy with every reference resolved."""
    known = {
        _bare(ref(stack, "aws_secretsmanager_secret", "arn", ROTATION)): SECRET_ARN,
        _bare(ref(stack, "aws_ssm_parameter", "arn")): PARAMETER_ARN,
        **configured_plans(stack),
    }
    return policy_document(only(stack, "aws_iam_role_policy", ROTATION)["policy"], known)


@pytest.fixture(scope="module", params=["default", "hardened"])
def stack(request: pytest.FixtureRequest, synths: dict[str, Synth]) -> dict:
    """The service stack of the default synth and of the hardened one (every production feature on)."""
    return synths[request.param].service


@pytest.fixture(scope="module")
def decide(stack: dict) -> Callable[..., Decision]:
    policy = role_policy(stack)

    def decision(action: str, resource: str, **context: Any) -> Decision:
        return evaluate([policy], Request(action=action, resource=resource, context=context))

    return decision


def _context(**tags: str) -> dict[str, Any]:
    """The condition keys a CreateApiKey request with `tags` sets."""
    return {**{f"aws:RequestTag/{key}": value for key, value in tags.items()}, "aws:TagKeys": list(tags)}


ALLOWED, REFUSED = Decision.ALLOW, Decision.IMPLICIT_DENY


# --- Creating keys -----------------------------------------------------------------------------------------------


def test_a_key_may_be_created_with_this_secrets_tag(decide):
    assert decide("apigateway:POST", f"{API}/apikeys", **_context(**CREATE_TAGS)) == ALLOWED
    assert decide("apigateway:POST", f"{API}/apikeys", **_context(RotationSecretArn=SECRET_ARN)) == ALLOWED


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {key: value for key, value in CREATE_TAGS.items() if key != "RotationSecretArn"},
        {**CREATE_TAGS, "RotationSecretArn": OTHER_SECRET_ARN},
        {**CREATE_TAGS, "RotationSecretArn": SECRET_ARN + "-suffix"},
        {**CREATE_TAGS, "Tenant": "acme"},  # a tenant-looking key
    ],
    ids=["no-tags", "without-the-secret-tag", "another-secrets-tag", "a-longer-arn", "an-extra-tag-key"],
)
def test_a_key_without_exactly_this_secrets_tags_may_not_be_created(decide, tags):
    assert decide("apigateway:POST", f"{API}/apikeys", **_context(**tags)) == REFUSED


@pytest.mark.parametrize("action", ["apigateway:POST", "apigateway:PUT"])
def test_nothing_may_be_tagged_afterwards(decide, action):
    tags = f"{API}/tags/{quote(f'{API}/apikeys/{OWN_KEY}', safe='')}"
    assert decide(action, tags, **_context(**CREATE_TAGS), **OWN_TAGS) == REFUSED
    assert decide(action, f"{API}/tags/{quote(f'{API}/apikeys/{TENANT_KEY}', safe='')}") == REFUSED


# --- Reading and deleting keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["apigateway:GET", "apigateway:DELETE"])
def test_only_this_secrets_keys_may_be_read_or_deleted(decide, action):
    assert decide(action, f"{API}/apikeys/{OWN_KEY}", **OWN_TAGS) == ALLOWED
    assert decide(action, f"{API}/apikeys/{TENANT_KEY}", **TENANT_TAGS) == REFUSED
    assert decide(action, f"{API}/apikeys/{TENANT_KEY}") == REFUSED  # an untagged key
    other = {"aws:ResourceTag/RotationSecretArn": OTHER_SECRET_ARN}
    assert decide(action, f"{API}/apikeys/{TENANT_KEY}", **other) == REFUSED


def test_keys_may_not_be_listed_so_no_value_is_ever_listed(decide):
    assert decide("apigateway:GET", f"{API}/apikeys") == REFUSED
    # Not even with a request that names this secret's tag: the collection has no tags.
    assert decide("apigateway:GET", f"{API}/apikeys", **OWN_TAGS) == REFUSED


@pytest.mark.parametrize("action", ["apigateway:PATCH", "apigateway:PUT"])
def test_no_key_may_be_changed(decide, action):
    assert decide(action, f"{API}/apikeys/{OWN_KEY}", **OWN_TAGS) == REFUSED


# --- Usage plans ---------------------------------------------------------------------------------------------------


def test_keys_may_be_attached_only_to_the_configured_plans(stack, decide):
    for plan in configured_plans(stack).values():
        assert decide("apigateway:POST", f"{API}/usageplans/{plan}/keys") == ALLOWED
    assert decide("apigateway:POST", f"{API}/usageplans/otherplan/keys") == REFUSED
    assert decide("apigateway:DELETE", f"{API}/usageplans/otherplan/keys/{OWN_KEY}") == REFUSED


def test_the_plans_keys_and_their_values_may_not_be_read(stack, decide):
    plan = next(iter(configured_plans(stack).values()))
    assert decide("apigateway:GET", f"{API}/usageplans/{plan}/keys") == REFUSED
    assert decide("apigateway:GET", f"{API}/usageplans/{plan}/keys/{TENANT_KEY}") == REFUSED
    assert decide("apigateway:DELETE", f"{API}/usageplans/{plan}/keys/{TENANT_KEY}") == REFUSED


def test_which_plans_hold_a_key_may_be_read_but_no_plan_changed(decide):
    assert decide("apigateway:GET", f"{API}/usageplans") == ALLOWED
    assert decide("apigateway:PATCH", f"{API}/usageplans/otherplan") == REFUSED
    assert decide("apigateway:DELETE", f"{API}/usageplans/otherplan") == REFUSED


# --- The secret and the parameter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ],
)
def test_the_versions_are_read_from_this_secret_only(decide, action):
    assert decide(action, SECRET_ARN) == ALLOWED
    assert decide(action, OTHER_SECRET_ARN) == REFUSED


def test_the_parameter_may_be_read_for_its_date_and_written_but_no_other(decide):
    for action in ("ssm:GetParameter", "ssm:PutParameter"):
        assert decide(action, PARAMETER_ARN) == ALLOWED
        assert decide(action, PARAMETER_ARN + "-other") == REFUSED
    assert decide("ssm:GetParameterHistory", PARAMETER_ARN) == REFUSED
