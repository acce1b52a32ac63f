"""The offline IAM policy evaluator decides like AWS's documented evaluation logic, and refuses what it lacks.

Every rule is shown with a request it lets through and one it refuses; the realistic cases are the policies the
emulator meets: an API's resource policy, a Lambda authorizer's policy, a function's `add-permission` policy and
a least-privilege identity policy.
"""

import json
from typing import Any

import pytest

from local_aws.apigw.policy import (
    ContextValue,
    Decision,
    Principal,
    Request,
    UnsupportedPolicy,
    evaluate,
    expand_execute_api_shorthand,
    matches_arn_pattern,
    parse_policy,
)

ACCOUNT = "123456789012"
API = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:keys"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ALLOW = Decision.ALLOW
DENY = Decision.DENY
IMPLICIT = Decision.IMPLICIT_DENY


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**elements: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", **elements}


def deny(**elements: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*", **elements}


def decide(
    *statements: dict[str, Any],
    action: str = "kms:Encrypt",
    resource: str = "arn:aws:kms:us-east-1:123456789012:key/k1",
    principal: Principal | None = None,
    context: dict[str, ContextValue] | None = None,
) -> Decision:
    return evaluate([document(*statements)], Request(action, resource, principal, context or {}))


def condition_holds(condition: dict[str, Any], context: dict[str, ContextValue]) -> bool:
    """Whether an identity policy's single Allow statement with this Condition block applies."""
    return decide(allow(Condition=condition), context=context) == ALLOW


# --- decision logic ------------------------------------------------------------------------------------------


def test_a_matching_allow_allows() -> None:
    assert decide(allow()) == ALLOW


def test_no_matching_statement_is_an_implicit_deny() -> None:
    assert decide(allow(Action="kms:Decrypt")) == IMPLICIT
    assert evaluate([], Request("kms:Encrypt", "*")) == IMPLICIT


def test_explicit_deny_overrides_allow() -> None:
    assert decide(allow(), deny()) == DENY
    assert decide(allow(), deny(Action="kms:Decrypt")) == ALLOW


def test_explicit_deny_in_another_policy_overrides_allow() -> None:
    request = Request("kms:Encrypt", "*")
    assert evaluate([document(allow()), document(deny())], request) == DENY
    assert evaluate([document(allow()), document(deny(Action="kms:Decrypt"))], request) == ALLOW


def test_policy_may_be_json_and_statement_a_single_object() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": allow()})
    assert evaluate([text], Request("kms:Encrypt", "*")) == ALLOW
    assert evaluate([text], Request("kms:Decrypt", "*")) == IMPLICIT


def test_parsed_policy_can_be_evaluated_again() -> None:
    parsed = parse_policy(document(allow()))
    assert evaluate([parsed], Request("kms:Encrypt", "*")) == ALLOW
    assert evaluate([parsed], Request("kms:Decrypt", "*")) == IMPLICIT


def test_decision_is_named_as_aws_names_it() -> None:
    assert [f"{decision}" for decision in Decision] == ["Allow", "Deny", "ImplicitDeny"]
    assert Decision("Deny") is DENY


# --- Action / NotAction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("kms:Encrypt", "kms:Encrypt", True),
        ("kms:Encrypt", "kms:encrypt", True),
        ("KMS:ENCRYPT", "kms:Encrypt", True),
        ("kms:Encrypt", "kms:Decrypt", False),
        ("kms:*", "kms:Decrypt", True),
        ("kms:*", "s3:GetObject", False),
        ("kms:Get*", "kms:GetKeyPolicy", True),
        ("kms:Get*", "kms:ListKeys", False),
        ("kms:?ncrypt", "kms:Encrypt", True),
        ("kms:?ncrypt", "kms:ReEncrypt", False),
        ("*", "s3:GetObject", True),
        ("s3:*", "s3express:CreateSession", False),
        (["s3:GetObject", "kms:Encrypt"], "kms:Encrypt", True),
        (["s3:GetObject", "kms:Decrypt"], "kms:Encrypt", False),
    ],
)
def test_action_matches_case_insensitively_with_wildcards(
    pattern: str | list[str], action: str, expected: bool
) -> None:
    assert (decide(allow(Action=pattern), action=action) == ALLOW) is expected


def test_not_action_applies_to_every_other_action() -> None:
    statement = {"Effect": "Allow", "NotAction": ["iam:*", "kms:ScheduleKeyDeletion"], "Resource": "*"}
    assert decide(statement, action="kms:Encrypt") == ALLOW
    assert decide(statement, action="kms:ScheduleKeyDeletion") == IMPLICIT
    assert decide(statement, action="iam:CreateUser") == IMPLICIT


# --- Resource / NotResource -----------------------------------------------------------------------------------


LOG_GROUP = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "arn:aws:s3:::bucket/key", True),
        (f"{API}/*", f"{API}/v1/POST/keys", True),
        (f"{API}/*", "arn:aws:execute-api:us-east-1:123456789012:other/v1/POST/keys", False),
        (f"{API}/*/GET/*", f"{API}/v1/GET/keys/k1", True),
        (f"{API}/*/GET/*", f"{API}/v1/POST/keys", False),
        (f"{API}/v1/POST/keys", f"{API}/v1/post/keys", False),
        (f"{API}/v?/POST/keys", f"{API}/v1/POST/keys", True),
        (f"{API}/v?/POST/keys", f"{API}/v10/POST/keys", False),
        (f"arn:aws:execute-api:*:{ACCOUNT}:abc123/*", f"{API}/v1/POST/keys", True),
        ("arn:aws:execute-api:*:999999999999:abc123/*", f"{API}/v1/POST/keys", False),
        (f"{LOG_GROUP}/x:*", f"{LOG_GROUP}/x:log-stream:s", True),
        (f"{LOG_GROUP}/x:*", f"{LOG_GROUP}/y:log-stream:s", False),
        ("arn:aws:*", "arn:aws:s3:::bucket", True),
        ("arn:aws:*", "arn:aws-cn:s3:::bucket", False),
        ("arn:aws:*:123456789012:function:f", "arn:aws:lambda:us-east-1:123456789012:function:f", False),
        ("arn:aws:lambda:*:123456789012:function:f", "arn:aws:lambda:us-east-1:123456789012:function:f", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket/key", False),
        (API, "arn:aws:execute-api:us-east-1:123456789012", False),
    ],
)
def test_matches_arn_pattern(pattern: str, value: str, expected: bool) -> None:
    assert matches_arn_pattern(pattern, value) is expected


def test_resource_matching_is_case_sensitive() -> None:
    assert decide(allow(Resource="arn:aws:kms:us-east-1:123456789012:key/k1")) == ALLOW
    assert decide(allow(Resource="arn:aws:kms:us-east-1:123456789012:key/K1")) == IMPLICIT


def test_resource_may_be_a_list() -> None:
    resources = [f"{API}/v1/GET/keys", f"{API}/v1/POST/keys"]
    assert decide(allow(Resource=resources), resource=f"{API}/v1/POST/keys") == ALLOW
    assert decide(allow(Resource=resources), resource=f"{API}/v1/DELETE/keys") == IMPLICIT


def test_not_resource_applies_to_every_other_resource() -> None:
    statement = {"Effect": "Deny", "Action": "kms:*", "NotResource": "arn:aws:kms:us-east-1:123456789012:key/k1"}
    assert decide(allow(), statement, resource="arn:aws:kms:us-east-1:123456789012:key/k2") == DENY
    assert decide(allow(), statement, resource="arn:aws:kms:us-east-1:123456789012:key/k1") == ALLOW


def test_expand_execute_api_shorthand_writes_full_arns() -> None:
    policy = document(allow(Principal="*", Action="execute-api:Invoke", Resource="execute-api:/*"))
    expanded = expand_execute_api_shorthand(policy, region="us-east-1", account_id=ACCOUNT, api_id="abc123")
    assert expanded["Statement"][0]["Resource"] == f"{API}/*"
    assert policy["Statement"][0]["Resource"] == "execute-api:/*"  # the input is left alone
    request = Request("execute-api:Invoke", f"{API}/v1/GET/keys", Principal.anonymous())
    assert evaluate([expanded], request) == ALLOW
    with pytest.raises(UnsupportedPolicy, match="expand_execute_api_shorthand"):
        evaluate([policy], request)


# --- Principal / NotPrincipal ---------------------------------------------------------------------------------

ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/session-1"


@pytest.mark.parametrize(
    ("element", "principal", "expected"),
    [
        ("*", Principal.anonymous(), True),
        ("*", Principal.service("apigateway.amazonaws.com"), True),
        ({"AWS": "*"}, Principal.anonymous(), True),
        ({"AWS": "*"}, Principal.aws(ALICE), True),
        ({"AWS": ACCOUNT}, Principal.anonymous(), False),
        ({"AWS": ACCOUNT}, Principal.aws(ALICE), True),
        ({"AWS": ACCOUNT}, Principal.aws("arn:aws:iam::999999999999:user/alice"), False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Principal.aws(ROLE_SESSION), True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Principal.aws("arn:aws:sts::999999999999:assumed-role/r/s"), False),
        ({"AWS": ALICE}, Principal.aws(ALICE), True),
        ({"AWS": ALICE}, Principal.aws(f"arn:aws:iam::{ACCOUNT}:user/bob"), False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"}, Principal.aws(ROLE_SESSION), True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci/reader"}, Principal.aws(ROLE_SESSION), False),
        ({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/bob", ALICE]}, Principal.aws(ALICE), True),
        ({"Service": "apigateway.amazonaws.com"}, Principal.service("apigateway.amazonaws.com"), True),
        ({"Service": "apigateway.amazonaws.com"}, Principal.service("lambda.amazonaws.com"), False),
        ({"Service": "apigateway.amazonaws.com"}, Principal.anonymous(), False),
        ({"Service": "apigateway.amazonaws.com"}, Principal.aws(f"arn:aws:iam::{ACCOUNT}:root"), False),
        ({"Service": ["events.amazonaws.com"], "AWS": ALICE}, Principal.aws(ALICE), True),
        ({"Service": ["events.amazonaws.com"], "AWS": ALICE}, Principal.service("events.amazonaws.com"), True),
    ],
)
def test_principal_element_names_the_caller(element: Any, principal: Principal, expected: bool) -> None:
    assert (decide(allow(Principal=element), principal=principal) == ALLOW) is expected


def test_not_principal_with_deny_denies_everyone_else() -> None:
    statements = (allow(Principal="*"), deny(NotPrincipal={"AWS": [ALICE, f"arn:aws:iam::{ACCOUNT}:root"]}))
    assert decide(*statements, principal=Principal.aws(ALICE)) == ALLOW
    assert decide(*statements, principal=Principal.aws(f"arn:aws:iam::{ACCOUNT}:user/bob")) == DENY
    assert decide(*statements, principal=Principal.anonymous()) == DENY


def test_not_principal_excludes_a_caller_only_with_its_account() -> None:
    """AWS's documented gotcha: the caller is also its account, so a user listed without the root stays denied."""
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s1"
    role_and_account = deny(NotPrincipal={"AWS": [f"arn:aws:iam::{ACCOUNT}:role/deployer", ACCOUNT]})
    assert decide(allow(Principal="*"), role_and_account, principal=Principal.aws(session)) == ALLOW
    assert decide(allow(Principal="*"), deny(NotPrincipal={"AWS": ALICE}), principal=Principal.aws(ALICE)) == DENY
    services = deny(NotPrincipal={"Service": "apigateway.amazonaws.com"})
    assert decide(allow(Principal="*"), services, principal=Principal.service("apigateway.amazonaws.com")) == ALLOW
    assert decide(allow(Principal="*"), services, principal=Principal.service("events.amazonaws.com")) == DENY


def test_identity_policy_refuses_a_principal_element() -> None:
    assert decide(allow()) == ALLOW
    with pytest.raises(UnsupportedPolicy, match="Principal in an identity-based policy"):
        decide(allow(Principal="*"))


def test_resource_policy_requires_a_principal_element() -> None:
    assert decide(allow(Principal="*"), principal=Principal.anonymous()) == ALLOW
    with pytest.raises(UnsupportedPolicy, match="without Principal"):
        decide(allow(), principal=Principal.anonymous())


def test_request_principal_and_action_are_validated() -> None:
    with pytest.raises(ValueError, match="principal ARN"):
        Principal.aws("alice")
    with pytest.raises(ValueError, match="service:Action"):
        evaluate([document(allow())], Request("Encrypt", "*"))
    with pytest.raises(ValueError, match="service:Action"):
        evaluate([document(allow())], Request("kms:*", "*"))


# --- Condition operators --------------------------------------------------------------------------------------

V6 = "2001:db8::1"


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # String operators: case-sensitive unless IgnoreCase; values within one key are OR-ed.
        ({"StringEquals": {"k": "a"}}, {"k": "a"}, True),
        ({"StringEquals": {"k": "a"}}, {"k": "A"}, False),
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "b"}, True),
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "c"}, False),
        ({"StringEquals": {"k": "a*"}}, {"k": "ab"}, False),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "c"}, True),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "b"}, False),
        ({"StringEqualsIgnoreCase": {"k": "AbC"}}, {"k": "aBc"}, True),
        ({"StringEqualsIgnoreCase": {"k": "AbC"}}, {"k": "abd"}, False),
        ({"StringNotEqualsIgnoreCase": {"k": "AbC"}}, {"k": "x"}, True),
        ({"StringNotEqualsIgnoreCase": {"k": "AbC"}}, {"k": "abc"}, False),
        ({"StringLike": {"k": "key-*"}}, {"k": "key-1/2:3"}, True),
        ({"StringLike": {"k": "key-*"}}, {"k": "Key-1"}, False),
        ({"StringLike": {"k": "?ey"}}, {"k": "key"}, True),
        ({"StringLike": {"k": "?ey"}}, {"k": "ey"}, False),
        ({"StringNotLike": {"k": ["key-*", "x"]}}, {"k": "y"}, True),
        ({"StringNotLike": {"k": ["key-*", "x"]}}, {"k": "key-1"}, False),
        # Arn operators: ArnEquals takes wildcards like ArnLike.
        ({"ArnEquals": {"k": f"{API}/*"}}, {"k": f"{API}/v1/GET/"}, True),
        ({"ArnLike": {"k": f"{API}/*/GET/*"}}, {"k": f"{API}/v1/GET/keys"}, True),
        ({"ArnLike": {"k": f"{API}/*/GET/*"}}, {"k": f"{API}/v1/PUT/keys"}, False),
        ({"ArnLike": {"k": f"{API}/*"}}, {"k": "abc123/v1"}, False),
        ({"ArnNotEquals": {"k": f"{API}/*"}}, {"k": FUNCTION}, True),
        ({"ArnNotLike": {"k": f"{API}/*"}}, {"k": f"{API}/v1/GET/"}, False),
        # IP operators: CIDRs or single addresses, IPv4 and IPv6 never cross.
        ({"IpAddress": {"k": "10.0.0.0/8"}}, {"k": "10.1.2.3"}, True),
        ({"IpAddress": {"k": "10.0.0.0/8"}}, {"k": "192.0.2.1"}, False),
        ({"IpAddress": {"k": ["192.0.2.0/24", "203.0.113.5"]}}, {"k": "203.0.113.5"}, True),
        ({"IpAddress": {"k": "203.0.113.5"}}, {"k": "203.0.113.6"}, False),
        ({"IpAddress": {"k": "2001:db8::/32"}}, {"k": V6}, True),
        ({"IpAddress": {"k": "2001:db8::/32"}}, {"k": "10.1.2.3"}, False),
        ({"IpAddress": {"k": "0.0.0.0/0"}}, {"k": V6}, False),
        ({"NotIpAddress": {"k": "10.0.0.0/8"}}, {"k": "192.0.2.1"}, True),
        ({"NotIpAddress": {"k": "10.0.0.0/8"}}, {"k": "10.1.2.3"}, False),
        ({"NotIpAddress": {"k": "0.0.0.0/0"}}, {"k": V6}, True),
        # Bool: the policy value may be a JSON bool or a string, the context a bool or a string.
        ({"Bool": {"k": "true"}}, {"k": True}, True),
        ({"Bool": {"k": "true"}}, {"k": False}, False),
        ({"Bool": {"k": True}}, {"k": "true"}, True),
        ({"Bool": {"k": False}}, {"k": "true"}, False),
        # Numeric operators compare numbers, not strings.
        ({"NumericLessThan": {"k": "3600"}}, {"k": "100"}, True),
        ({"NumericLessThan": {"k": "3600"}}, {"k": "3600"}, False),
        ({"NumericLessThanEquals": {"k": 3600}}, {"k": "3600"}, True),
        ({"NumericLessThanEquals": {"k": 3600}}, {"k": "3601"}, False),
        ({"NumericGreaterThan": {"k": "9"}}, {"k": "10"}, True),
        ({"NumericGreaterThan": {"k": "10"}}, {"k": "9"}, False),
        ({"NumericGreaterThanEquals": {"k": "1.5"}}, {"k": 2}, True),
        ({"NumericGreaterThanEquals": {"k": "1.5"}}, {"k": "1.4"}, False),
        ({"NumericEquals": {"k": [5, 10]}}, {"k": "10"}, True),
        ({"NumericEquals": {"k": [5, 10]}}, {"k": "7"}, False),
        ({"NumericNotEquals": {"k": 5}}, {"k": "6"}, True),
        ({"NumericNotEquals": {"k": 5}}, {"k": "5"}, False),
    ],
)
def test_condition_operator(condition: dict[str, Any], context: dict[str, ContextValue], expected: bool) -> None:
    assert condition_holds(condition, context) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringEqualsIgnoreCase", False),
        ("StringLike", False),
        ("ArnEquals", False),
        ("ArnLike", False),
        ("IpAddress", False),
        ("Bool", False),
        ("NumericEquals", False),
        ("NumericLessThan", False),
        ("StringNotEquals", True),
        ("StringNotEqualsIgnoreCase", True),
        ("StringNotLike", True),
        ("ArnNotEquals", True),
        ("ArnNotLike", True),
        ("NotIpAddress", True),
        ("NumericNotEquals", True),
        ("StringEqualsIfExists", True),
        ("IpAddressIfExists", True),
        ("BoolIfExists", True),
        ("ForAllValues:StringEquals", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringNotEquals", False),
    ],
)
def test_missing_condition_key(operator: str, expected: bool) -> None:
    value = {"Bool": "true", "IpAddress": "10.0.0.0/8", "NotIpAddress": "10.0.0.0/8"}.get(
        operator.removesuffix("IfExists"), "1"
    )
    assert condition_holds({operator: {"k": value}}, {"other": "1"}) is expected


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "a"}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False),
        ({"NumericLessThanIfExists": {"k": "3600"}}, {"k": "60"}, True),
        ({"NumericLessThanIfExists": {"k": "3600"}}, {"k": "7200"}, False),
    ],
)
def test_if_exists_still_compares_a_present_key(
    condition: dict[str, Any], context: dict[str, ContextValue], expected: bool
) -> None:
    assert condition_holds(condition, context) is expected


@pytest.mark.parametrize(
    ("value", "context", "expected"),
    [
        ("true", {}, True),
        ("true", {"k": "v"}, False),
        ("true", {"k": []}, True),
        ("false", {"k": "v"}, True),
        ("false", {}, False),
        (True, {}, True),
    ],
)
def test_null_checks_whether_the_key_is_missing(value: Any, context: dict[str, ContextValue], expected: bool) -> None:
    assert condition_holds({"Null": {"k": value}}, context) is expected


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a"]}, True),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a", "b"]}, True),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a", "c"]}, False),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": []}, True),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": "a"}, True),
        ({"ForAnyValue:StringEquals": {"k": ["a", "b"]}}, {"k": ["x", "b"]}, True),
        ({"ForAnyValue:StringEquals": {"k": ["a", "b"]}}, {"k": ["x", "y"]}, False),
        ({"ForAnyValue:StringEquals": {"k": ["a", "b"]}}, {"k": []}, False),
        ({"ForAllValues:StringNotEquals": {"k": ["a", "b"]}}, {"k": ["x", "y"]}, True),
        ({"ForAllValues:StringNotEquals": {"k": ["a", "b"]}}, {"k": ["x", "a"]}, False),
        ({"ForAnyValue:StringNotEquals": {"k": ["a", "b"]}}, {"k": ["a", "x"]}, True),
        ({"ForAnyValue:StringNotEquals": {"k": ["a", "b"]}}, {"k": ["a", "b"]}, False),
        ({"ForAnyValue:StringLike": {"k": "team-*"}}, {"k": ["ops", "team-a"]}, True),
        ({"ForAnyValue:StringLike": {"k": "team-*"}}, {"k": ["ops"]}, False),
    ],
)
def test_set_operators_on_multivalued_keys(
    condition: dict[str, Any], context: dict[str, ContextValue], expected: bool
) -> None:
    assert condition_holds(condition, context) is expected


def test_single_valued_operator_refuses_a_multivalued_key() -> None:
    assert condition_holds({"StringEquals": {"k": "a"}}, {"k": ["a"]}) is True
    with pytest.raises(UnsupportedPolicy, match="multivalued key"):
        condition_holds({"StringEquals": {"k": "a"}}, {"k": ["a", "b"]})


def test_condition_operators_are_and_ed() -> None:
    condition = {"StringEquals": {"a": "1"}, "Bool": {"b": "true"}}
    assert condition_holds(condition, {"a": "1", "b": True}) is True
    assert condition_holds(condition, {"a": "1", "b": False}) is False
    assert condition_holds(condition, {"a": "2", "b": True}) is False


def test_condition_keys_under_one_operator_are_and_ed() -> None:
    condition = {"StringEquals": {"a": "1", "b": "2"}}
    assert condition_holds(condition, {"a": "1", "b": "2"}) is True
    assert condition_holds(condition, {"a": "1", "b": "3"}) is False


def test_condition_key_lookup_is_case_insensitive() -> None:
    condition = {"ArnLike": {"AWS:SourceArn": f"{API}/*"}}
    assert condition_holds(condition, {"aws:sourcearn": f"{API}/v1/GET/"}) is True
    assert condition_holds(condition, {"aws:sourcearn": f"{FUNCTION}"}) is False


def test_invalid_request_context_is_refused() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        condition_holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "localhost"})
    with pytest.raises(ValueError, match="twice"):
        condition_holds({"StringEquals": {"k": "a"}}, {"k": "a", "K": "a"})


# --- realistic case 1: an API's resource policy with an IP allow-list -----------------------------------------

API_POLICY = document(
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": f"{API}/*"},
    {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": f"{API}/*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
    },
)


@pytest.mark.parametrize(
    ("source_ip", "expected"),
    [("10.1.2.3", ALLOW), ("192.0.2.1", DENY), (V6, DENY)],
)
def test_api_resource_policy_allows_only_the_listed_source_ips(source_ip: str, expected: Decision) -> None:
    request = Request("execute-api:Invoke", f"{API}/v1/POST/keys", Principal.anonymous(), {"aws:SourceIp": source_ip})
    assert evaluate([API_POLICY], request) == expected


def test_api_resource_policy_does_not_cover_another_api() -> None:
    other = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:zzz999/v1/POST/keys"
    request = Request("execute-api:Invoke", other, Principal.anonymous(), {"aws:SourceIp": "10.1.2.3"})
    assert evaluate([API_POLICY], request) == IMPLICIT


# --- realistic case 2: a private API's VPC endpoint restriction -----------------------------------------------

VPCE_POLICY = document(
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": f"{API}/*"},
    {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": f"{API}/*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": ["vpce-1"]}},
    },
)


@pytest.mark.parametrize(
    ("context", "expected"),
    [({}, DENY), ({"aws:SourceVpce": "vpce-2"}, DENY), ({"aws:SourceVpce": "vpce-1"}, ALLOW)],
)
def test_api_resource_policy_denies_calls_not_through_the_vpc_endpoint(
    context: dict[str, ContextValue], expected: Decision
) -> None:
    request = Request("execute-api:Invoke", f"{API}/v1/GET/keys", Principal.anonymous(), context)
    assert evaluate([VPCE_POLICY], request) == expected


# --- realistic case 3: a Lambda function's resource policy from add-permission -------------------------------

SOURCE = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc/*/POST/keys"
LAMBDA_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Id": "default",
    "Statement": [
        {
            "Sid": "apigateway-invoke",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
            "Condition": {"ArnLike": {"AWS:SourceArn": SOURCE}},
        }
    ],
}
APIGATEWAY = Principal.service("apigateway.amazonaws.com")
CALLER = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc/v1/POST/keys"


@pytest.mark.parametrize(
    ("principal", "resource", "source_arn", "expected"),
    [
        (APIGATEWAY, FUNCTION, CALLER, ALLOW),
        (APIGATEWAY, FUNCTION, f"arn:aws:execute-api:us-east-1:{ACCOUNT}:xyz/v1/POST/keys", IMPLICIT),
        (APIGATEWAY, FUNCTION, f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc/v1/GET/keys", IMPLICIT),
        (APIGATEWAY, FUNCTION, None, IMPLICIT),
        (APIGATEWAY, f"{FUNCTION}-other", CALLER, IMPLICIT),
        (Principal.anonymous(), FUNCTION, CALLER, IMPLICIT),
        (Principal.service("events.amazonaws.com"), FUNCTION, CALLER, IMPLICIT),
    ],
)
def test_lambda_resource_policy_lets_only_the_named_api_method_invoke(
    principal: Principal, resource: str, source_arn: str | None, expected: Decision
) -> None:
    context: dict[str, ContextValue] = {} if source_arn is None else {"aws:SourceArn": source_arn}
    assert evaluate([LAMBDA_POLICY], Request("lambda:InvokeFunction", resource, principal, context)) == expected


def test_lambda_resource_policy_with_source_account_needs_both_keys() -> None:
    statement = dict(LAMBDA_POLICY["Statement"][0])
    statement["Condition"] = {"ArnLike": {"AWS:SourceArn": SOURCE}, "StringEquals": {"AWS:SourceAccount": ACCOUNT}}
    both: dict[str, ContextValue] = {"aws:SourceArn": CALLER, "aws:SourceAccount": ACCOUNT}
    request = Request("lambda:InvokeFunction", FUNCTION, APIGATEWAY, both)
    assert evaluate([document(statement)], request) == ALLOW
    request = Request("lambda:InvokeFunction", FUNCTION, APIGATEWAY, {"aws:SourceArn": CALLER})
    assert evaluate([document(statement)], request) == IMPLICIT


# --- realistic case 4: a Lambda authorizer's policy -----------------------------------------------------------

AUTHORIZER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{API}/v1/GET/keys", f"{API}/v1/GET/keys/*"]},
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": f"{API}/v1/DELETE/keys/*"},
    ],
}


@pytest.mark.parametrize(
    ("method_arn", "expected"),
    [
        (f"{API}/v1/GET/keys", ALLOW),
        (f"{API}/v1/GET/keys/k1", ALLOW),
        (f"{API}/v1/DELETE/keys/k1", DENY),
        (f"{API}/v1/POST/keys", IMPLICIT),
        (f"{API}/v2/GET/keys", IMPLICIT),
    ],
)
def test_authorizer_policy_allows_and_denies_method_arns(method_arn: str, expected: Decision) -> None:
    assert evaluate([AUTHORIZER_POLICY], Request("execute-api:Invoke", method_arn)) == expected


# --- realistic case 5: a least-privilege identity policy for tagging KMS keys ---------------------------------

TAGGING_POLICY = document(
    {
        "Effect": "Allow",
        "Action": "kms:TagResource",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:ResourceTag/CreatedBy": "deployer"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["CreatedBy", "Owner"]},
            "StringEqualsIfExists": {"aws:RequestTag/Owner": ["team-a", "team-b"]},
            "Bool": {"aws:SecureTransport": "true"},
        },
    },
    {
        "Effect": "Deny",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"Null": {"aws:ResourceTag/CreatedBy": "true"}},
    },
)
TAGGING: dict[str, ContextValue] = {
    "aws:ResourceTag/CreatedBy": "deployer",
    "aws:TagKeys": ["Owner"],
    "aws:RequestTag/Owner": "team-a",
    "aws:SecureTransport": True,
}


@pytest.mark.parametrize(
    ("action", "changes", "expected"),
    [
        ("kms:TagResource", {}, ALLOW),
        ("kms:TagResource", {"aws:ResourceTag/CreatedBy": "someone"}, IMPLICIT),
        ("kms:TagResource", {"aws:TagKeys": ["Owner", "Admin"]}, IMPLICIT),
        ("kms:TagResource", {"aws:TagKeys": ["CreatedBy"], "aws:RequestTag/Owner": None}, ALLOW),
        ("kms:TagResource", {"aws:RequestTag/Owner": "team-z"}, IMPLICIT),
        ("kms:TagResource", {"aws:SecureTransport": False}, IMPLICIT),
        ("kms:TagResource", {"aws:SecureTransport": None}, IMPLICIT),
        ("kms:TagResource", {"aws:ResourceTag/CreatedBy": None}, DENY),
        ("kms:Decrypt", {}, IMPLICIT),
        ("kms:Decrypt", {"aws:ResourceTag/CreatedBy": None}, DENY),
    ],
)
def test_tagging_identity_policy(action: str, changes: dict[str, ContextValue | None], expected: Decision) -> None:
    context = {key: value for key, value in {**TAGGING, **changes}.items() if value is not None}
    request = Request(action, f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1", None, context)
    assert evaluate([TAGGING_POLICY], request) == expected


# --- realistic case 6 and the rest: what the evaluator refuses ------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}), "DateGreaterThan"),
        (allow(Condition={"StringEqualz": {"k": "v"}}), "StringEqualz"),
        (allow(Condition={"NullIfExists": {"k": "true"}}), "NullIfExists"),
        (allow(Condition={"ForAnyValue:Null": {"k": "true"}}), "ForAnyValue:Null"),
        (allow(Resource="arn:aws:s3:::bucket/${aws:username}/*"), "policy variable in Resource"),
        (allow(Condition={"StringEquals": {"aws:PrincipalTag/team": "${aws:username}"}}), "policy variable"),
        (allow(Condition={"Bool": {"k": "yes"}}), "Bool"),
        (allow(Condition={"IpAddress": {"k": "10.0.0.0/33"}}), "CIDR"),
        (allow(Condition={"NumericLessThan": {"k": "soon"}}), "not a number"),
        (allow(Condition={"StringEquals": {"k": {"nested": "v"}}}), "StringEquals k"),
        (allow(Condition={"StringEquals": {"k": []}}), "no values"),
        (allow(Principal={"AWS": "*"}, NotPrincipal={"AWS": "*"}), "both Principal and NotPrincipal"),
        (allow(NotPrincipal={"AWS": ALICE}), "NotPrincipal with Effect Allow"),
        (allow(Principal={"Federated": "cognito-identity.amazonaws.com"}), "Federated"),
        (allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/*"}), "wildcards"),
        (allow(Principal={"AWS": "AIDAEXAMPLEUNIQUEID"}), "AIDAEXAMPLEUNIQUEID"),
        (allow(Effect="allow"), "Effect 'allow'"),
        (allow(Actions="kms:Encrypt"), "Actions"),
        (allow(NotAction="kms:Decrypt"), "both Action and NotAction"),
        ({"Effect": "Allow", "Action": "kms:Encrypt"}, "neither Resource nor NotResource"),
        (allow(Action="Encrypt"), "service:Action"),
        (allow(Resource="execute-api:/*"), "expand_execute_api_shorthand"),
    ],
)
def test_unsupported_policy_is_refused(statement: dict[str, Any], message: str) -> None:
    principal = Principal.anonymous() if "Principal" in statement or "NotPrincipal" in statement else None
    with pytest.raises(UnsupportedPolicy, match=message.replace("$", r"\$").replace("*", r"\*")):
        decide(statement, principal=principal)


def test_unsupported_element_is_refused_even_when_its_statement_would_not_apply() -> None:
    other = allow(Action="s3:GetObject", Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})
    assert decide(allow()) == ALLOW
    with pytest.raises(UnsupportedPolicy, match="DateLessThan"):
        decide(allow(), other)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"Version": "2020-01-01", "Statement": allow()}, "Version"),
        ({"Version": "2012-10-17"}, "without Statement"),
        ({"Version": "2012-10-17", "Statement": allow(), "Extra": 1}, "Extra"),
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
    ],
)
def test_malformed_policy_document_is_refused(policy: Any, message: str) -> None:
    assert evaluate([{"Version": "2008-10-17", "Statement": allow()}], Request("kms:Encrypt", "*")) == ALLOW
    with pytest.raises(UnsupportedPolicy, match=message):
        evaluate([policy], Request("kms:Encrypt", "*"))
