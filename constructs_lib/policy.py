"""IAM policy documents as plain Python dicts, rendered with Terraform's `jsonencode`.

Dicts keep policies readable in code and in the synthesized JSON (one expression, references intact),
without a data source per policy. A `Grantee` is what grants (`SecureParameter.grant_write`, `kms.grant_decrypt`,
`dynamodb.grant_get_item`) add their statements to: the resource owns the statement, the caller names who gets it.
"""

from __future__ import annotations

from typing import Any, Protocol

from .cdk import Fn


class Grantee(Protocol):
    """Something with an IAM role that grants add statements to (a `lambda_function.LambdaFunction`)."""

    def add_to_role_policy(self, *statements: dict[str, Any]) -> None: ...


def statement(
    sid: str,
    actions: list[str],
    resources: list[str] | str | None = None,
    *,
    effect: str = "Allow",
    principal: dict[str, Any] | str | None = None,
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One IAM statement (trust policies omit `resources`); a `Sid` lets reviewers name what a diff touches."""
    body: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": actions}
    if resources is not None:
        body["Resource"] = resources
    if principal is not None:
        body["Principal"] = principal
    if condition is not None:
        body["Condition"] = condition
    return body


def document(*statements: dict[str, Any]) -> str:
    """A policy document string for a `policy`/`assume_role_policy` attribute."""
    return Fn.jsonencode({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role(service: str) -> str:
    """Trust policy letting one AWS service assume a role."""
    return document(statement("TrustService", ["sts:AssumeRole"], principal={"Service": service}))
