"""Throttling and quota bookkeeping for the emulator's API Gateway data plane.

What API Gateway does, and what this module models:

* Throttling is a token bucket: a bucket holds at most ``burstLimit`` tokens, refills at
  ``rateLimit`` tokens per second, and starts full; each request takes one token and a
  request that finds no token is refused (429 ``Too Many Requests``). A burst of 0
  refuses everything. API Gateway keeps such buckets per account/region, per stage,
  per method and per API key in a usage plan; ``Throttles`` keys them by whatever
  hashable the caller picks, so the data plane decides the levels.
* A usage plan's quota caps an API key's requests per ``DAY``, ``WEEK`` or ``MONTH`` in
  UTC. ``offset`` is the day a period starts: with ``WEEK`` 0 is Sunday, 1 Monday…;
  with ``MONTH`` 0 is the 1st of the month, 1 the 2nd…; with ``DAY`` it must be 0.
  The request after the limit is refused (429 ``Limit Exceeded``) and does not count.
* ``GetUsage`` reports, per API key and per UTC day, ``[used, remaining]``.

Where this differs from AWS:

* AWS's buckets and counters are distributed and approximate (a few requests over a
  limit can slip through, usage shows up in ``GetUsage`` after minutes); here they are
  exact and immediate, which is what a test wants.
* Nothing is persisted; a bucket that changes limits starts full again (AWS applies a
  new plan within seconds without an observable refill rule).
* A ``MONTH`` offset past the month's last day (offset 30 in April) starts that month's
  period on its last day; AWS does not document this case.
* ``remaining`` is computed against the plan's *current* quota: the ledger keeps counts,
  not the quota history, and ``UpdateUsage`` (granting extra requests) is not modelled.

Every time-dependent method takes the time explicitly (``time.monotonic()`` seconds for
buckets, an aware ``datetime`` for quotas) so the behaviour is deterministic under test.
"""

import calendar
import threading
from collections.abc import Hashable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

PERIODS = ("DAY", "WEEK", "MONTH")

# Float arithmetic on timestamps (t0 + 1/rate - t0) can land a hair under a whole token.
_EPSILON = 1e-9


class TokenBucket:
    """One token bucket, as API Gateway throttles: ``burst`` capacity, ``rate`` tokens/s, starts full."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate < 0 or burst < 0:
            raise ValueError(f"rate and burst must not be negative: rate={rate}, burst={burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._tokens = float(self.burst)
        self._last = now
        self._lock = threading.Lock()

    def take(self, now: float) -> bool:
        """Admit one request if a token is left, consuming it; refuse it (consuming nothing) otherwise."""
        with self._lock:
            if now > self._last:  # a clock read before the last one refills nothing
                self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
                self._last = now
            if self._tokens + _EPSILON < 1:
                return False
            self._tokens = max(0.0, self._tokens - 1)
            return True


class Throttles:
    """Token buckets by key, so a level (stage, method, API key…) keeps its state between requests."""

    def __init__(self) -> None:
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, key: Hashable, rate: float, burst: int, now: float) -> bool:
        """Take a token from ``key``'s bucket, creating it full on first use.

        Limits are passed on every call because the operator can change them at any time
        (``UpdateUsagePlan``, ``UpdateStage``); a changed ``(rate, burst)`` replaces the bucket
        with a full one, so new limits apply at once instead of after the old bucket drains.
        """
        rate, burst = float(rate), int(burst)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
                bucket = self._buckets[key] = TokenBucket(rate, burst, now)
        return bucket.take(now)

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s bucket (its resource was deleted); the next ``admit`` starts a full one."""
        with self._lock:
            self._buckets.pop(key, None)


class Quota(NamedTuple):
    """A usage plan's ``quota`` block, coerced to numbers (the control plane may hold strings)."""

    limit: int
    period: str
    offset: int


def parse_quota(quota: Mapping[str, Any] | None) -> Quota | None:
    """The quota moto stores for a usage plan, or ``None`` when the plan has none (no ``limit``)."""
    if not quota or quota.get("limit") in (None, ""):
        return None
    period = str(quota.get("period") or "").upper()
    offset = int(quota.get("offset") or 0)
    _check_period(period, offset)
    return Quota(int(quota["limit"]), period, offset)


def _check_period(period: str, offset: int) -> None:
    limits = {"DAY": 0, "WEEK": 6, "MONTH": 30}
    if period not in limits:
        raise ValueError(f"Invalid quota period {period!r}: must be one of {', '.join(PERIODS)}")
    if not 0 <= offset <= limits[period]:
        raise ValueError(f"Invalid quota offset {offset} for period {period}: must be 0 to {limits[period]}")


def _month_start(year: int, month: int, offset: int) -> datetime:
    day = min(offset + 1, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def period_bounds(period: str, offset: int, at: datetime) -> tuple[datetime, datetime]:
    """The quota period containing ``at``, as ``[start, end)`` in UTC.

    Quotas reset at UTC midnight on the period's first day, whatever the caller's zone,
    so ``at`` must be timezone-aware. Raises ``ValueError`` for an unknown period or an
    offset out of range (DAY 0, WEEK 0-6, MONTH 0-30).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")
    period = period.upper()
    _check_period(period, offset)
    at = at.astimezone(UTC)
    midnight = datetime.combine(at.date(), time(), tzinfo=UTC)
    if period == "DAY":
        return midnight, midnight + timedelta(days=1)
    if period == "WEEK":
        sunday_based = (at.weekday() + 1) % 7  # Python's Monday=0 to AWS's Sunday=0
        start = midnight - timedelta(days=(sunday_based - offset) % 7)
        return start, start + timedelta(days=7)
    this_month = _month_start(at.year, at.month, offset)
    if at >= this_month:
        return this_month, _month_start(*_next_month(at.year, at.month), offset)
    return _month_start(*_previous_month(at.year, at.month), offset), this_month


def _days(start: date, end: date) -> Iterator[date]:
    """Every day from ``start`` to ``end``, both included."""
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


class UsageLedger:
    """Requests counted per usage plan, API key and UTC day: enforces quotas and answers ``GetUsage``.

    Days are the unit because every quota period starts at a UTC midnight and ``GetUsage``
    reports per day, so a period's usage is the sum of its days.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], dict[date, int]] = {}
        self._lock = threading.Lock()

    def consume(self, plan_id: str, key_id: str, quota: Mapping[str, Any] | None, at: datetime) -> bool:
        """Count one request of ``key_id`` under ``plan_id`` at ``at``, unless it would exceed the quota.

        Returns ``False`` (and counts nothing, as API Gateway does not count refused requests)
        when the key already made ``limit`` requests in the current period. A plan without a
        quota admits everything but still counts it, so ``GetUsage`` reports it.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("at must be a timezone-aware datetime")
        parsed = parse_quota(quota)
        day = at.astimezone(UTC).date()
        with self._lock:
            counts = self._counts.setdefault((plan_id, key_id), {})
            if parsed is not None:
                start, end = period_bounds(parsed.period, parsed.offset, at)
                used = sum(n for d, n in counts.items() if start.date() <= d < end.date())
                if used >= parsed.limit:
                    return False
            counts[day] = counts.get(day, 0) + 1
            return True

    def used(self, plan_id: str, key_id: str, start: date, end: date) -> dict[date, int]:
        """Requests counted per day from ``start`` to ``end`` (both included), 0 for a day without any."""
        with self._lock:
            counts = dict(self._counts.get((plan_id, key_id), {}))
        return {day: counts.get(day, 0) for day in _days(start, end)}

    def keys(self, plan_id: str) -> set[str]:
        """The API keys with requests counted under ``plan_id``, including keys since removed from it."""
        with self._lock:
            return {key for plan, key in self._counts if plan == plan_id}

    def usage(
        self,
        plan_id: str,
        quota: Mapping[str, Any] | None,
        start: date,
        end: date,
        key_id: str | None = None,
    ) -> dict[str, list[list[int]]]:
        """``GetUsage``'s ``values``: per API key, one ``[used, remaining]`` pair per day from ``start`` to ``end``.

        ``used`` is the day's count. ``remaining`` is what the key had left in that day's
        quota period at the end of the day: ``limit`` minus the period's requests up to and
        including that day, never below 0 (AWS's documented example: ``[0, 100], [10, 90]``).

        A plan without a quota has nothing to remain, and the wire type (a list of longs)
        has no "unlimited" marker, so ``remaining`` is 0 there: a client must read the plan's
        ``quota`` to tell "exhausted" from "unlimited", as it must to know the limit at all.

        With ``key_id`` only that key is reported, with zeros if it made no request; without
        it, every key with requests counted under the plan.
        """
        parsed = parse_quota(quota)
        keys = [key_id] if key_id is not None else sorted(self.keys(plan_id))
        with self._lock:
            counts = {key: dict(self._counts.get((plan_id, key), {})) for key in keys}
        items: dict[str, list[list[int]]] = {}
        for key, days in counts.items():
            rows = []
            for day in _days(start, end):
                remaining = 0
                if parsed is not None:
                    midnight = datetime.combine(day, time(), tzinfo=UTC)
                    period_start = period_bounds(parsed.period, parsed.offset, midnight)[0].date()
                    in_period = sum(n for d, n in days.items() if period_start <= d <= day)
                    remaining = max(parsed.limit - in_period, 0)
                rows.append([days.get(day, 0), remaining])
            items[key] = rows
        return items
