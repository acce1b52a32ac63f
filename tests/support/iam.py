"""Synthesized IAM policies as documents the offline evaluator (`local_aws.apigw.policy`) can decide on.

cdktf renders a policy as `${jsonencode({...})}`: an HCL object expression whose references (the account id,
the partition, other resources' ARNs) are only known at apply time. `policy_document` parses that expression
(the subset cdktf emits: objects with `"key" = value`, lists, strings with `${...}` interpolations, bare
references, numbers, booleans) and substitutes each reference, so tests evaluate the policy itself, not a text
match on it. Unknown references become `<reference>` placeholders, which match nothing but themselves.

`kms_allows` models how KMS authorizes a call on a key (KMS Developer Guide, "Key policies" and "Allowing
access to keys with IAM policies"): the key policy must allow the principal directly, or allow the account
(its root), which lets IAM policies in that account grant it; an explicit Deny in either wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from local_aws.apigw.policy import Decision, Principal, Request, evaluate

ACCOUNT = "123456789012"
"""The service's own account in the evaluated policies."""
PARTITION = "aws"
KNOWN_REFERENCES = {
    "data.aws_caller_identity.current.account_id": ACCOUNT,
    "data.aws_partition.partition.partition": PARTITION,
}

_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*(\[[^\]]*\])*(\.[A-Za-z0-9_\-]+)*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class _Parser:
    """A recursive-descent parser for the HCL expressions cdktf's `Fn.jsonencode` emits."""

    def __init__(self, text: str, resolve: Callable[[str], str]) -> None:
        self.text, self.position, self.resolve = text, 0, resolve

    def parse(self) -> Any:
        value = self._value()
        self._skip()
        if self.position != len(self.text):
            raise ValueError(f"trailing text at {self.position}: {self.text[self.position :][:40]!r}")
        return value

    def _skip(self) -> None:
        while self.position < len(self.text) and self.text[self.position] in " \t\r\n":
            self.position += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.position] if self.position < len(self.text) else ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ValueError(f"expected {char!r} at {self.position}: {self.text[self.position :][:40]!r}")
        self.position += 1

    def _value(self) -> Any:
        char = self._peek()
        if char == "{":
            return self._object()
        if char == "[":
            return self._list()
        if char == '"':
            return self._string()
        number = _NUMBER.match(self.text, self.position)
        if number:
            self.position = number.end()
            return json.loads(number.group())
        reference = _REFERENCE.match(self.text, self.position)
        if not reference:
            raise ValueError(f"unexpected text at {self.position}: {self.text[self.position :][:40]!r}")
        self.position = reference.end()
        word = reference.group()
        literals = {"true": True, "false": False, "null": None}
        return literals[word] if word in literals else self.resolve(word)

    def _object(self) -> dict[str, Any]:
        self._expect("{")
        result: dict[str, Any] = {}
        while self._peek() != "}":
            key = self._string()
            self._expect("=")
            result[key] = self._value()
            if self._peek() == ",":
                self.position += 1
        self._expect("}")
        return result

    def _list(self) -> list[Any]:
        self._expect("[")
        result = []
        while self._peek() != "]":
            result.append(self._value())
            if self._peek() == ",":
                self.position += 1
        self._expect("]")
        return result

    def _string(self) -> str:
        self._expect('"')
        parts: list[str] = []
        escapes = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "/": "/"}
        while True:
            char = self.text[self.position]
            if char == '"':
                self.position += 1
                return "".join(parts)
            if char == "\\":
                parts.append(escapes[self.text[self.position + 1]])
                self.position += 2
            elif self.text.startswith("$${", self.position):  # HCL's escape for a literal `${`
                parts.append("${")
                self.position += 3
            elif self.text.startswith("${", self.position):
                end = self.text.index("}", self.position)
                parts.append(self.resolve(self.text[self.position + 2 : end].strip()))
                self.position = end + 1
            else:
                parts.append(char)
                self.position += 1


def _default_resolver(extra: Mapping[str, str]) -> Callable[[str], str]:
    known = {**KNOWN_REFERENCES, **extra}
    return lambda reference: known.get(reference, f"<{reference}>")


def policy_document(rendered: str, references: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The policy a synthesized `${jsonencode({...})}` attribute stands for, references substituted."""
    expression = rendered.strip()
    if not (expression.startswith("${jsonencode(") and expression.endswith(")}")):
        raise ValueError(f"not a jsonencode expression: {expression[:60]!r}")
    return _Parser(expression[len("${jsonencode(") : -2], _default_resolver(references or {})).parse()


def role_session(role_name: str, account: str = ACCOUNT) -> Principal:
    """The principal a Lambda execution role's calls carry: a session of that role."""
    return Principal.aws(f"arn:{PARTITION}:sts::{account}:assumed-role/{role_name}/function-session")


def _without_account_principals(key_policy: Mapping[str, Any], account: str) -> dict[str, Any]:
    """The key policy minus its entries naming the whole account: what it grants principals directly."""
    roots = {account, f"arn:{PARTITION}:iam::{account}:root"}
    statements = []
    for statement in key_policy["Statement"]:
        principal = statement.get("Principal")
        if isinstance(principal, Mapping) and "AWS" in principal:
            named = principal["AWS"] if isinstance(principal["AWS"], list) else [principal["AWS"]]
            kept = [entry for entry in named if entry not in roots]
            if not kept:
                continue
            statement = {**statement, "Principal": {**principal, "AWS": kept}}
        statements.append(statement)
    return {**key_policy, "Statement": statements}


def kms_allows(
    identity_policies: Sequence[Mapping[str, Any]],
    key_policy: Mapping[str, Any],
    action: str,
    key_arn: str,
    principal: Principal,
    context: Mapping[str, Any] | None = None,
    account: str = ACCOUNT,
) -> bool:
    """Whether KMS lets `principal` (whose IAM policies are `identity_policies`) call `action` on a key.

    Allowed when neither policy type denies explicitly and either the key policy allows the principal
    itself, or the key policy allows the account root (delegating to IAM) and an IAM policy allows it.
    """
    context = dict(context or {})
    as_identity = Request(action, key_arn, context=context)
    as_principal = Request(action, key_arn, principal=principal, context=context)
    identity = evaluate(list(identity_policies), as_identity)
    if identity is Decision.DENY or evaluate([key_policy], as_principal) is Decision.DENY:
        return False
    if evaluate([_without_account_principals(key_policy, account)], as_principal) is Decision.ALLOW:
        return True
    root = Principal.aws(f"arn:{PARTITION}:iam::{account}:root")
    delegated = evaluate([key_policy], Request(action, key_arn, principal=root, context=context))
    return delegated is Decision.ALLOW and identity is Decision.ALLOW


def default_key_policy(account: str = ACCOUNT) -> dict[str, Any]:
    """The policy KMS gives a key created without one (and every key of the account not made by the service):
    the account root may do everything, which only enables IAM policies."""
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{PARTITION}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
