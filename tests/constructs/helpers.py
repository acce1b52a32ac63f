"""Helpers of the construct tests: find resources by construct path, read policies, stand in for a grantee."""

from __future__ import annotations

import re
from typing import Any


class Grantee:
    """Collects what grants add, in order (stands in for a `LambdaFunction`)."""

    def __init__(self) -> None:
        self.statements: list[dict[str, Any]] = []

    def add_to_role_policy(self, *statements: dict[str, Any]) -> None:
        self.statements.extend(statements)


def resources(document: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    """The resources of one type by logical name without its hash suffix: the construct path below the stack,
    joined by `_` (`plan_usage-plan` for `test/plan/usage-plan`), so tests never name hashed ids."""
    found = document.get("resource", {}).get(rtype, {})
    return {re.sub(r"_[0-9A-F]{8}$", "", name): resource for name, resource in found.items()}


def one(document: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = resources(document, rtype)
    assert len(found) == 1, f"expected one {rtype}, found {sorted(found)}"
    return next(iter(found.values()))


def sids(policy: str) -> list[str]:
    """Statement ids of a `${jsonencode(...)}` policy, in order."""
    return re.findall(r'"Sid" = "(\w+)"', policy)


def is_reference(value: object, rtype: str, attribute: str) -> bool:
    """Whether `value` is the `${<rtype>.<name>.<attribute>}` reference of a resource."""
    return isinstance(value, str) and re.fullmatch(rf"\$\{{{rtype}\.[\w-]+\.{attribute}\}}", value) is not None
