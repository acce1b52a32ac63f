"""An offline evaluator for AWS IAM policies: resource policies, authorizer policies and identity policies.

The emulator needs real answers to "would AWS let this call through?" for an API's resource policy
(`execute-api:Invoke`), the policy a Lambda authorizer returns, a Lambda function's resource policy (may
`apigateway.amazonaws.com` invoke it from this source ARN?) and, in tests, least-privilege identity policies.
moto checks none of these, so this module implements the documented rules for one policy type at a time:

- IAM User Guide, "Policy evaluation logic": an explicit Deny in any matching statement wins, else any matching
  Allow allows, else the request is implicitly denied.
- IAM User Guide, "IAM JSON policy elements reference": Version, Statement, Effect, Principal, NotPrincipal,
  Action, NotAction, Resource, NotResource and Condition, including "Condition operators", "...IfExists",
  "Condition operator to check existence of condition keys" (Null) and "Single-valued vs. multivalued context
  keys" (ForAllValues / ForAnyValue, with their missing-key rules).

ARN matching (Resource, NotResource, Arn* operators) follows ArnLike: the six colon-separated components are
matched one by one, so `*` spans `/` anywhere and spans `:` inside the resource component (the sixth, which
keeps its own colons); a `*` ending a pattern with fewer than six components absorbs the rest (`arn:aws:*`).
In Principal an account id or `:root` ARN stands for every principal of that account and a role ARN for its
sessions; in NotPrincipal a signed caller is excluded only when both it and its account are listed (the AWS
docs' NotPrincipal examples). Condition key names are case-insensitive; an empty list in the request context
counts as a missing key. Element and operator names are matched exactly, as AWS spells them.

Everything outside this subset raises `UnsupportedPolicy` naming the element instead of guessing. In
particular NOT supported:

- policy variables (`${aws:username}`, `${*}`...), in any Version;
- Date* and Binary* operators (any operator not in `_BASE_OPERATORS`); `NullIfExists`; set prefixes on Null;
- `NotPrincipal` with Effect Allow; principals of kind Federated / CanonicalUser; partial wildcards or unique
  ids (AIDA...) in Principal;
- API Gateway's `execute-api:/...` Resource shorthand: expand it first with `expand_execute_api_shorthand`;
- a multivalued context key under an operator without ForAllValues / ForAnyValue;
- combining several policy types (SCPs, permissions boundaries, session policies, cross-account rules):
  `evaluate` is one policy type's decision, the caller composes them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "ContextValue",
    "Decision",
    "Policy",
    "PolicyDocument",
    "Principal",
    "Request",
    "UnsupportedPolicy",
    "evaluate",
    "expand_execute_api_shorthand",
    "matches_arn_pattern",
    "parse_policy",
]

ContextValue = str | bool | int | list[str] | tuple[str, ...]
PolicyDocument = Mapping[str, Any] | str

_VERSIONS = frozenset({"2012-10-17", "2008-10-17"})
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_ACCOUNT_ID = re.compile(r"\d{12}")
_PRINCIPAL_ARN = re.compile(r"arn:(?P<partition>[a-z-]+):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<rest>.+)")
_ROLE = re.compile(r"role/(?:.*/)?(?P<name>[^/]+)")
_ASSUMED_ROLE = re.compile(r"assumed-role/(?P<name>[^/]+)/[^/]+")


class UnsupportedPolicy(ValueError):
    """A policy uses something this evaluator does not implement (or AWS would reject): never guess a decision."""


class Decision(StrEnum):
    """The outcome of one policy type's evaluation, as the IAM evaluation flowchart names it."""

    ALLOW = "Allow"
    DENY = "Deny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Principal:
    """Who makes the request, as resource-based policies see it."""

    kind: Literal["anonymous", "service", "aws"]
    name: str = ""

    @classmethod
    def anonymous(cls) -> Principal:
        """An unsigned caller: only `"*"` and `{"AWS": "*"}` name it."""
        return cls("anonymous")

    @classmethod
    def service(cls, name: str) -> Principal:
        """An AWS service acting on its own behalf, e.g. `apigateway.amazonaws.com`."""
        if not name or "*" in name:
            raise ValueError(f"not a service principal: {name!r}")
        return cls("service", name)

    @classmethod
    def aws(cls, arn: str) -> Principal:
        """An IAM user, role, role session or account root, by ARN."""
        if not _PRINCIPAL_ARN.fullmatch(arn):
            raise ValueError(f"not an IAM or STS principal ARN: {arn!r}")
        return cls("aws", arn)


@dataclass(frozen=True)
class Request:
    """One request as policy evaluation sees it; `principal=None` evaluates identity-based policies."""

    action: str
    resource: str
    principal: Principal | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class _PrincipalSpec:
    """A Principal / NotPrincipal element, flattened."""

    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    everyone: bool = False


@dataclass(frozen=True)
class _Condition:
    """One key under one operator: its values are OR-ed, the conditions of a statement AND-ed."""

    operator: str
    base: str
    set_op: Literal["ForAllValues", "ForAnyValue"] | None
    if_exists: bool
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class _Statement:
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principal: _PrincipalSpec | None
    not_principal: bool
    conditions: tuple[_Condition, ...]


@dataclass(frozen=True)
class Policy:
    """A validated policy document: parsing it raises every `UnsupportedPolicy` before any request is seen."""

    statements: tuple[_Statement, ...]


# --- matching helpers ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str, star: str, one: str, flags: int) -> re.Pattern[str]:
    parts = [star if char == "*" else one if char == "?" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), flags | re.DOTALL)


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """StringLike: `*` is any run of characters, `?` any one character; nothing else is special."""
    return _glob_regex(pattern, ".*", ".", re.IGNORECASE if ignore_case else 0).fullmatch(value) is not None


def matches_arn_pattern(pattern: str, value: str) -> bool:
    """Whether `value` matches an ARN pattern the way ArnLike and the Resource element do (case-sensitive).

    The six colon-separated components match separately: in the first five `*` and `?` stop at `:`, in the
    sixth (the resource, colons included) they do not; a `*` ending a pattern of fewer components absorbs the
    remaining ones, so `arn:aws:*` matches every `aws` ARN. A bare `*` matches anything.
    """
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(value_parts) < len(pattern_parts):
        return False
    if len(pattern_parts) == 6:
        return all(_glob(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))
    *head, last = pattern_parts
    if not all(_glob(p, v) for p, v in zip(head, value_parts, strict=False)):
        return False
    rest = ":".join(value_parts[len(head) :])
    if last.endswith("*"):
        regex = _glob_regex(last[:-1], "[^:]*", "[^:]", 0).pattern + ".*"
    else:
        regex = _glob_regex(last, "[^:]*", "[^:]", 0).pattern
    return re.fullmatch(regex, rest, re.DOTALL) is not None


def _action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, ignore_case=True)


def _ip_in(cidr: str, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as error:
        raise ValueError(f"request context IP {address!r} is not an IP address") from error
    network = ipaddress.ip_network(cidr, strict=False)
    return network.version == ip.version and ip in network


def _number(text: str, where: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as error:
        raise ValueError(f"{where}: {text!r} is not a number") from error


def _numeric(compare: Callable[[Decimal, Decimal], bool]) -> Callable[[str, str], bool]:
    def match(policy_value: str, request_value: str) -> bool:
        return compare(_number(request_value, "request context"), Decimal(policy_value))

    return match


# Positive operators: match(policy_value, request_value). Negated ones are NOT(any positive match).
# ArnEquals and ArnLike are documented as the same comparison (both take wildcards).
_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.casefold() == v.casefold(),
    "StringLike": _glob,
    "ArnEquals": matches_arn_pattern,
    "ArnLike": matches_arn_pattern,
    "IpAddress": _ip_in,
    "Bool": lambda p, v: p == v.lower(),
    "NumericEquals": _numeric(lambda v, p: v == p),
    "NumericLessThan": _numeric(lambda v, p: v < p),
    "NumericLessThanEquals": _numeric(lambda v, p: v <= p),
    "NumericGreaterThan": _numeric(lambda v, p: v > p),
    "NumericGreaterThanEquals": _numeric(lambda v, p: v >= p),
}
_NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
    "NumericNotEquals": "NumericEquals",
}
_BASE_OPERATORS = frozenset(_MATCHERS) | frozenset(_NEGATED) | {"Null"}


# --- parsing ------------------------------------------------------------------------------------------------


def _strings(value: Any, element: str) -> tuple[str, ...]:
    """An element that may be one string or a list of strings."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise UnsupportedPolicy(f"{element} must be a non-empty string or list of strings, got {value!r}")
    for item in items:
        if "${" in item:
            raise UnsupportedPolicy(f"policy variable in {element}: {item!r}")
    return tuple(items)


def _condition_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if "${" in value:
            raise UnsupportedPolicy(f"policy variable in Condition {where}: {value!r}")
        return value
    raise UnsupportedPolicy(f"Condition {where} value must be a string, bool or number, got {value!r}")


def _parse_operator(name: str) -> tuple[str, Literal["ForAllValues", "ForAnyValue"] | None, bool]:
    set_op: Literal["ForAllValues", "ForAnyValue"] | None = None
    base = name
    if base.startswith("ForAllValues:"):
        set_op, base = "ForAllValues", base.removeprefix("ForAllValues:")
    elif base.startswith("ForAnyValue:"):
        set_op, base = "ForAnyValue", base.removeprefix("ForAnyValue:")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _BASE_OPERATORS:
        raise UnsupportedPolicy(f"Condition operator {name!r}")
    if base == "Null" and (if_exists or set_op):
        raise UnsupportedPolicy(f"Condition operator {name!r}: Null takes neither IfExists nor a set prefix")
    return base, set_op, if_exists


def _parse_conditions(block: Any) -> tuple[_Condition, ...]:
    if not isinstance(block, Mapping):
        raise UnsupportedPolicy(f"Condition must be an object, got {block!r}")
    conditions: list[_Condition] = []
    for operator, keys in block.items():
        base, set_op, if_exists = _parse_operator(operator)
        if not isinstance(keys, Mapping) or not keys:
            raise UnsupportedPolicy(f"Condition {operator} must map condition keys to values, got {keys!r}")
        for key, raw in keys.items():
            where = f"{operator} {key}"
            if "${" in key:
                raise UnsupportedPolicy(f"policy variable in Condition key {key!r}")
            raw_values = raw if isinstance(raw, list) else [raw]
            if not raw_values:
                raise UnsupportedPolicy(f"Condition {where} has no values")
            values = tuple(_condition_value(value, where) for value in raw_values)
            values = _check_values(base, values, where)
            conditions.append(_Condition(operator, base, set_op, if_exists, key.lower(), values))
    return tuple(conditions)


def _check_values(base: str, values: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Validate the policy side now so a bad value fails the policy, not some later request."""
    positive = _NEGATED.get(base, base)
    if base in {"Null", "Bool"}:
        if not all(value.lower() in {"true", "false"} for value in values):
            raise UnsupportedPolicy(f'Condition {where}: {base} takes "true" or "false", got {list(values)}')
        return tuple(value.lower() for value in values)
    if positive == "IpAddress":
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as error:
                raise UnsupportedPolicy(f"Condition {where}: {value!r} is not a CIDR") from error
    if positive.startswith("Numeric"):
        for value in values:
            try:
                Decimal(value)
            except InvalidOperation as error:
                raise UnsupportedPolicy(f"Condition {where}: {value!r} is not a number") from error
    return values


def _parse_principal(value: Any, element: str) -> _PrincipalSpec:
    if value == "*":
        return _PrincipalSpec(everyone=True)
    if not isinstance(value, Mapping) or not value:
        raise UnsupportedPolicy(f'{element} must be "*" or an object, got {value!r}')
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    for kind, names in value.items():
        if kind == "AWS":
            aws = _strings(names, f"{element} AWS")
            for name in aws:
                if name != "*" and not (_ACCOUNT_ID.fullmatch(name) or _PRINCIPAL_ARN.fullmatch(name)):
                    raise UnsupportedPolicy(f'{element} AWS {name!r}: only "*", account ids and IAM/STS ARNs')
                if name != "*" and ("*" in name or "?" in name):
                    raise UnsupportedPolicy(f'{element} AWS {name!r}: wildcards other than a bare "*"')
        elif kind == "Service":
            services = _strings(names, f"{element} Service")
            if any("*" in name or "?" in name for name in services):
                raise UnsupportedPolicy(f"{element} Service {list(services)}: wildcards")
        else:
            raise UnsupportedPolicy(f"{element} of kind {kind!r}")
    return _PrincipalSpec(aws=aws, services=services, everyone="*" in aws)


def _one_of(statement: Mapping[str, Any], positive: str, negative: str, *, required: bool) -> tuple[Any, bool]:
    if positive in statement and negative in statement:
        raise UnsupportedPolicy(f"statement has both {positive} and {negative}")
    if negative in statement:
        return statement[negative], True
    if positive not in statement and required:
        raise UnsupportedPolicy(f"statement has neither {positive} nor {negative}")
    return statement.get(positive), False


def _parse_statement(statement: Any) -> _Statement:
    if not isinstance(statement, Mapping):
        raise UnsupportedPolicy(f"Statement must be an object, got {statement!r}")
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicy(f"statement element(s) {sorted(unknown)}")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"Effect {effect!r}")
    actions, not_action = _one_of(statement, "Action", "NotAction", required=True)
    resources, not_resource = _one_of(statement, "Resource", "NotResource", required=True)
    principal, not_principal = _one_of(statement, "Principal", "NotPrincipal", required=False)
    if not_principal and effect == "Allow":
        raise UnsupportedPolicy("NotPrincipal with Effect Allow")
    action_element = "NotAction" if not_action else "Action"
    action_patterns = _strings(actions, action_element)
    for action in action_patterns:
        if action != "*" and action.count(":") != 1:
            raise UnsupportedPolicy(f'{action_element} {action!r} is not "*" or "service:Action"')
    resource_element = "NotResource" if not_resource else "Resource"
    resource_patterns = _strings(resources, resource_element)
    for resource in resource_patterns:
        if resource.startswith("execute-api:"):
            raise UnsupportedPolicy(f"{resource_element} {resource!r}: expand it with expand_execute_api_shorthand")
    return _Statement(
        effect=effect,
        actions=action_patterns,
        not_action=not_action,
        resources=resource_patterns,
        not_resource=not_resource,
        principal=None
        if principal is None
        else _parse_principal(principal, "NotPrincipal" if not_principal else "Principal"),
        not_principal=not_principal,
        conditions=_parse_conditions(statement.get("Condition", {})),
    )


def _load(document: PolicyDocument) -> Mapping[str, Any]:
    if isinstance(document, str):
        try:
            loaded = json.loads(document)
        except json.JSONDecodeError as error:
            raise UnsupportedPolicy(f"policy is not JSON: {error}") from error
    else:
        loaded = document
    if not isinstance(loaded, Mapping):
        raise UnsupportedPolicy(f"policy must be a JSON object, got {type(loaded).__name__}")
    return loaded


def parse_policy(document: PolicyDocument) -> Policy:
    """Validate a policy (a dict or its JSON) once, so evaluating it never meets an unsupported element."""
    loaded = _load(document)
    unknown = set(loaded) - {"Version", "Id", "Statement"}
    if unknown:
        raise UnsupportedPolicy(f"policy element(s) {sorted(unknown)}")
    if "Version" in loaded and loaded["Version"] not in _VERSIONS:
        raise UnsupportedPolicy(f"Version {loaded['Version']!r}")
    if "Statement" not in loaded:
        raise UnsupportedPolicy("policy without Statement")
    raw = loaded["Statement"]
    statements = raw if isinstance(raw, list) else [raw]
    return Policy(tuple(_parse_statement(statement) for statement in statements))


def expand_execute_api_shorthand(
    document: PolicyDocument, *, region: str, account_id: str, api_id: str, partition: str = "aws"
) -> dict[str, Any]:
    """Rewrite `execute-api:/stage/METHOD/path` resources to full ARNs, as API Gateway does when it saves a policy."""
    prefix = f"arn:{partition}:execute-api:{region}:{account_id}:{api_id}"
    expanded: dict[str, Any] = json.loads(json.dumps(_load(document)))

    def expand(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("execute-api:/"):
            return prefix + value.removeprefix("execute-api:")
        if isinstance(value, list):
            return [expand(item) for item in value]
        return value

    raw = expanded.get("Statement")
    for statement in raw if isinstance(raw, list) else [raw]:
        if isinstance(statement, dict):
            for element in ("Resource", "NotResource"):
                if element in statement:
                    statement[element] = expand(statement[element])
    return expanded


# --- evaluation ---------------------------------------------------------------------------------------------


def _principal_named(entry: str, principal: Principal) -> bool:
    """One `AWS` entry against a signed principal: account ids and `:root` stand for the whole account."""
    if entry == "*":
        return True
    if principal.kind != "aws":
        return False
    request = _PRINCIPAL_ARN.fullmatch(principal.name)
    assert request is not None  # Principal.aws validated it
    if _ACCOUNT_ID.fullmatch(entry):
        return request["account"] == entry
    named = _PRINCIPAL_ARN.fullmatch(entry)
    assert named is not None  # _parse_principal validated it
    if (named["partition"], named["account"]) != (request["partition"], request["account"]):
        return False
    if named["service"] == "iam" and named["rest"] == "root":
        return True
    if entry == principal.name:
        return True
    # A role ARN names every session of that role (a session's ARN drops the role's path).
    role, session = _ROLE.fullmatch(named["rest"]), _ASSUMED_ROLE.fullmatch(request["rest"])
    if named["service"] != "iam" or request["service"] != "sts" or role is None or session is None:
        return False
    return role["name"] == session["name"]


def _principal_matches(spec: _PrincipalSpec, principal: Principal) -> bool:
    if spec.everyone:
        return True
    if principal.kind == "service":
        return principal.name in spec.services
    return any(_principal_named(entry, principal) for entry in spec.aws)


def _principal_excluded(spec: _PrincipalSpec, principal: Principal) -> bool:
    """Whether NotPrincipal lists the caller: a signed caller is both itself and its account, and both must be listed.

    This is why AWS's NotPrincipal examples list the user (or role and session) together with the account root:
    an account entry there does not exclude the account's users, and a user entry alone leaves its account denied.
    """
    if spec.everyone:
        return True
    if principal.kind != "aws":
        return _principal_matches(spec, principal)
    request = _PRINCIPAL_ARN.fullmatch(principal.name)
    assert request is not None  # Principal.aws validated it
    root = f"arn:{request['partition']}:iam::{request['account']}:root"
    account_listed = request["account"] in spec.aws or root in spec.aws
    if principal.name == root:
        return account_listed
    itself = (entry for entry in spec.aws if not _ACCOUNT_ID.fullmatch(entry) and entry != root)
    return account_listed and any(_principal_named(entry, principal) for entry in itself)


def _normalize_context(context: Mapping[str, ContextValue]) -> dict[str, tuple[str, ...]]:
    """Lower-case the keys (condition key names are case-insensitive) and turn every value into a tuple of str."""
    normalized: dict[str, tuple[str, ...]] = {}
    for key, value in context.items():
        if key.lower() in normalized:
            raise ValueError(f"request context has condition key {key!r} twice (keys are case-insensitive)")
        if isinstance(value, bool):
            values: tuple[str, ...] = ("true" if value else "false",)
        elif isinstance(value, int):
            values = (str(value),)
        elif isinstance(value, str):
            values = (value,)
        elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            values = tuple(value)
        else:
            raise TypeError(f"request context {key!r}: {value!r} is not a str, bool, int or list of str")
        normalized[key.lower()] = values
    return normalized


def _matches_one(condition: _Condition, value: str) -> bool:
    """One request value against the condition's values: OR-ed, or for a negated operator, none may match."""
    positive = _NEGATED.get(condition.base)
    matcher = _MATCHERS[positive or condition.base]
    matched = any(matcher(policy_value, value) for policy_value in condition.values)
    return not matched if positive else matched


def _condition_holds(condition: _Condition, context: Mapping[str, tuple[str, ...]]) -> bool:
    values = context.get(condition.key) or None  # an empty list is a missing key
    if condition.base == "Null":
        return any((policy_value == "true") == (values is None) for policy_value in condition.values)
    if values is None:
        if condition.if_exists or condition.set_op == "ForAllValues":
            return True
        if condition.set_op == "ForAnyValue":
            return False
        return condition.base in _NEGATED
    if condition.set_op == "ForAllValues":
        return all(_matches_one(condition, value) for value in values)
    if condition.set_op == "ForAnyValue":
        return any(_matches_one(condition, value) for value in values)
    if len(values) != 1:
        raise UnsupportedPolicy(
            f"Condition {condition.operator} on multivalued key {condition.key!r}: needs ForAllValues/ForAnyValue"
        )
    return _matches_one(condition, values[0])


def _check_mode(statement: _Statement, request: Request) -> None:
    """Identity-based policies (no request principal) have no Principal; resource-based ones always have one."""
    if request.principal is None and statement.principal is not None:
        element = "NotPrincipal" if statement.not_principal else "Principal"
        raise UnsupportedPolicy(f"{element} in an identity-based policy (the request has no principal)")
    if request.principal is not None and statement.principal is None:
        raise UnsupportedPolicy("statement without Principal or NotPrincipal in a resource-based policy")


def _statement_applies(statement: _Statement, request: Request, context: Mapping[str, tuple[str, ...]]) -> bool:
    principal, spec = request.principal, statement.principal
    if principal is not None and spec is not None:
        if statement.not_principal and _principal_excluded(spec, principal):
            return False
        if not statement.not_principal and not _principal_matches(spec, principal):
            return False
    action_matched = any(_action_matches(pattern, request.action) for pattern in statement.actions)
    if action_matched == statement.not_action:
        return False
    resource_matched = any(matches_arn_pattern(pattern, request.resource) for pattern in statement.resources)
    if resource_matched == statement.not_resource:
        return False
    return all(_condition_holds(condition, context) for condition in statement.conditions)


def evaluate(policies: Iterable[PolicyDocument | Policy], request: Request) -> Decision:
    """Deny if any applicable statement denies, else Allow if any allows, else ImplicitDeny.

    Every policy is parsed (and every statement's Principal checked against the request's mode) before the
    decision, so an unsupported element raises whatever the request.
    """
    if request.action.count(":") != 1 or "*" in request.action or "?" in request.action:
        raise ValueError(f'request action {request.action!r} is not "service:Action"')
    parsed = [policy if isinstance(policy, Policy) else parse_policy(policy) for policy in policies]
    context = _normalize_context(request.context)
    statements = [statement for policy in parsed for statement in policy.statements]
    for statement in statements:
        _check_mode(statement, request)
    applicable = [statement.effect for statement in statements if _statement_applies(statement, request, context)]
    if "Deny" in applicable:
        return Decision.DENY
    if "Allow" in applicable:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY
