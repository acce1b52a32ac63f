"""Props validation shared by the constructs: collect every problem, raise once, name the prop.

Settings already validate what users type; these checks catch wrong wiring in code, when a construct is reused
with props no settings file produced. A value that is a Terraform reference (a cdktf token) is known only at
apply time and is never checked here.

Each construct builds a `Problems` for its own name, runs its checks and calls `raise_if_any()` before it creates
anything, so a bad prop leaves no half-built construct behind. The message of the `ValueError` has one line per
problem: `UsagePlan.quota_period: must be one of DAY, WEEK, MONTH, got 'YEAR'`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .cdk import Token
from .rules import Check

# `matches` and `cidr` are shared with the settings; the constructs take them from here with the other checks.
from .rules import cidr as cidr
from .rules import matches as matches


def unresolved(value: object) -> bool:
    """Whether `value` is (or embeds) a Terraform reference, known only at apply time."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    return bool(Token.is_unresolved(value))


class Problems:
    """The problems found in one construct's props."""

    def __init__(self, construct: str) -> None:
        self._construct = construct
        self._found: list[str] = []

    def add(self, prop: str, value: object, problem: str, *, shown: str | None = None) -> None:
        """Record a problem; `shown` replaces the value in the message (for a value that must not be echoed)."""
        self._found.append(f"{self._construct}.{prop}: {problem}, got {shown or repr(value)}")

    def check(self, prop: str, value: object, check: Check) -> None:
        """Record `check`'s problem with `value`, unless the value is a reference."""
        if unresolved(value):
            return
        problem = check(value)
        if problem:
            self.add(prop, value, problem)

    def check_each(self, prop: str, values: Iterable[object], check: Check) -> None:
        """`check` on every item, each named by its index: `prop[2]`."""
        for index, value in enumerate(values):
            self.check(f"{prop}[{index}]", value, check)

    def check_keys(self, prop: str, mapping: Mapping[str, object], check: Check) -> None:
        """`check` on every key of `mapping`."""
        for key in mapping:
            problem = None if unresolved(key) else check(key)
            if problem:
                self.add(prop, key, f"key {problem}")

    def raise_if_any(self) -> None:
        if self._found:
            raise ValueError("\n".join(self._found))


def non_empty(value: object) -> str | None:
    return None if value else "must not be empty"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be >= 0"


def between(low: float, high: float) -> Check:
    return lambda value: None if low <= value <= high else f"must be between {low:g} and {high:g}"


def one_of(*allowed: object) -> Check:
    return lambda value: None if value in allowed else f"must be one of {', '.join(map(str, allowed))}"


KMS_ALIAS = matches(r"alias/(?!aws/)[A-Za-z0-9/_-]{1,250}", "an alias name alias/<name> (not under alias/aws/)")
