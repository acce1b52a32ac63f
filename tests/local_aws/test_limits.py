"""Token buckets, quota periods and the usage ledger behind the emulator's API Gateway limits.

Pure unit tests: every clock is passed in, so nothing sleeps.
"""

import threading
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from local_aws.apigw.limits import Throttles, TokenBucket, UsageLedger, parse_quota, period_bounds

T0 = 1000.0  # an arbitrary time.monotonic() reading


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def admitted(bucket: TokenBucket, n: int, now: float) -> int:
    return sum(bucket.take(now) for _ in range(n))


# --- token bucket ------------------------------------------------------------


def test_bucket_starts_full_and_admits_exactly_burst():
    bucket = TokenBucket(rate=1, burst=5, now=T0)

    assert [bucket.take(T0) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_refills_one_token_per_one_over_rate_seconds():
    bucket = TokenBucket(rate=10, burst=2, now=T0)
    admitted(bucket, 2, T0)

    assert bucket.take(T0 + 0.05) is False
    assert bucket.take(T0 + 0.1) is True
    assert bucket.take(T0 + 0.1) is False


def test_bucket_never_holds_more_than_burst_after_idling():
    bucket = TokenBucket(rate=100, burst=3, now=T0)
    admitted(bucket, 3, T0)

    assert admitted(bucket, 10, T0 + 3600) == 3


def test_refused_request_consumes_nothing():
    bucket = TokenBucket(rate=1, burst=1, now=T0)
    bucket.take(T0)
    bucket.take(T0 + 0.5)  # refused: only half a token

    assert bucket.take(T0 + 1) is True


def test_clock_going_backwards_refills_nothing():
    bucket = TokenBucket(rate=1, burst=1, now=T0)
    bucket.take(T0)

    assert bucket.take(T0 - 10) is False


def test_burst_zero_refuses_everything():
    bucket = TokenBucket(rate=1000, burst=0, now=T0)

    assert admitted(bucket, 5, T0) + admitted(bucket, 5, T0 + 60) == 0


def test_negative_limits_are_rejected():
    with pytest.raises(ValueError):
        TokenBucket(rate=-1, burst=1, now=T0)


# --- throttles registry --------------------------------------------------------


def test_throttles_keep_one_bucket_per_key():
    throttles = Throttles()

    assert [throttles.admit("a", 1, 1, T0) for _ in range(2)] == [True, False]
    assert throttles.admit("b", 1, 1, T0) is True


def test_changed_limits_replace_the_bucket_full():
    throttles = Throttles()
    throttles.admit("key", 1, 1, T0)

    assert [throttles.admit("key", 1, 3, T0) for _ in range(4)] == [True, True, True, False]


def test_unchanged_limits_keep_the_bucket():
    throttles = Throttles()
    throttles.admit("key", 1, 1, T0)

    assert throttles.admit("key", 1.0, 1, T0) is False


def test_forgotten_key_starts_full_again():
    throttles = Throttles()
    throttles.admit("key", 1, 1, T0)
    throttles.forget("key")

    assert throttles.admit("key", 1, 1, T0) is True


def test_concurrent_admits_never_exceed_burst():
    throttles = Throttles()
    burst, threads_count, attempts = 50, 16, 40
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads_count)

    def hammer() -> None:
        barrier.wait()
        mine = [throttles.admit("shared", 10, burst, T0) for _ in range(attempts)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(results) == burst
    assert len(results) == threads_count * attempts


# --- quota periods ---------------------------------------------------------------


def test_day_period_is_the_utc_calendar_day():
    assert period_bounds("DAY", 0, utc(2024, 5, 1, 23, 59)) == (utc(2024, 5, 1), utc(2024, 5, 2))


def test_period_is_computed_in_utc_whatever_the_zone():
    at = datetime(2024, 5, 2, 1, 0, tzinfo=timezone(timedelta(hours=3)))  # 2024-05-01 22:00 UTC

    assert period_bounds("DAY", 0, at) == (utc(2024, 5, 1), utc(2024, 5, 2))


def test_day_period_requires_offset_zero():
    with pytest.raises(ValueError):
        period_bounds("DAY", 1, utc(2024, 5, 1))


def test_naive_datetime_is_rejected():
    with pytest.raises(ValueError):
        period_bounds("DAY", 0, datetime(2024, 5, 1))


def test_unknown_period_is_rejected():
    with pytest.raises(ValueError):
        period_bounds("YEAR", 0, utc(2024, 5, 1))


def test_week_offset_zero_starts_on_sunday():
    # 2024-05-01 is a Wednesday; the Sunday before is 2024-04-28.
    assert period_bounds("WEEK", 0, utc(2024, 5, 1, 12)) == (utc(2024, 4, 28), utc(2024, 5, 5))


def test_week_offset_one_starts_on_monday():
    assert period_bounds("WEEK", 1, utc(2024, 5, 1, 12)) == (utc(2024, 4, 29), utc(2024, 5, 6))


def test_week_starting_today_includes_today():
    sunday = utc(2024, 4, 28, 0, 0)

    assert period_bounds("WEEK", 0, sunday)[0] == sunday


def test_week_period_wraps_the_year():
    # 2025-01-01 is a Wednesday; its Sunday week started 2024-12-29.
    assert period_bounds("WEEK", 0, utc(2025, 1, 1)) == (utc(2024, 12, 29), utc(2025, 1, 5))


def test_month_offset_zero_is_the_calendar_month():
    assert period_bounds("MONTH", 0, utc(2024, 2, 29, 23)) == (utc(2024, 2, 1), utc(2024, 3, 1))


def test_month_offset_starts_on_a_later_day():
    assert period_bounds("MONTH", 14, utc(2024, 5, 20)) == (utc(2024, 5, 15), utc(2024, 6, 15))


def test_month_offset_before_the_start_day_is_in_the_previous_period():
    assert period_bounds("MONTH", 14, utc(2024, 5, 3)) == (utc(2024, 4, 15), utc(2024, 5, 15))


def test_month_period_wraps_the_year():
    assert period_bounds("MONTH", 9, utc(2025, 1, 5)) == (utc(2024, 12, 10), utc(2025, 1, 10))
    assert period_bounds("MONTH", 0, utc(2024, 12, 31, 23, 59)) == (utc(2024, 12, 1), utc(2025, 1, 1))


def test_month_offset_past_month_end_starts_on_its_last_day():
    assert period_bounds("MONTH", 30, utc(2024, 2, 29, 12)) == (utc(2024, 2, 29), utc(2024, 3, 31))


def test_quota_values_are_coerced_from_strings():
    assert parse_quota({"limit": "10", "period": "week", "offset": "1"}) == (10, "WEEK", 1)


def test_empty_quota_means_no_quota():
    assert parse_quota({}) is None
    assert parse_quota(None) is None


# --- usage ledger --------------------------------------------------------------

DAILY_3 = {"limit": 3, "period": "DAY", "offset": 0}


def test_consume_refuses_exactly_the_request_after_the_limit():
    ledger = UsageLedger()
    at = utc(2024, 5, 1, 12)

    assert [ledger.consume("plan", "key", DAILY_3, at) for _ in range(4)] == [True, True, True, False]


def test_refused_request_is_not_recorded():
    ledger = UsageLedger()
    at = utc(2024, 5, 1, 12)
    for _ in range(5):
        ledger.consume("plan", "key", DAILY_3, at)

    assert ledger.used("plan", "key", date(2024, 5, 1), date(2024, 5, 1)) == {date(2024, 5, 1): 3}


def test_new_period_resets_the_quota():
    ledger = UsageLedger()
    for _ in range(3):
        ledger.consume("plan", "key", DAILY_3, utc(2024, 5, 1, 23, 59))

    assert ledger.consume("plan", "key", DAILY_3, utc(2024, 5, 2, 0, 0)) is True


def test_weekly_quota_counts_across_days_of_the_period():
    ledger = UsageLedger()
    weekly = {"limit": "2", "period": "WEEK", "offset": "1"}  # Monday to Sunday
    ledger.consume("plan", "key", weekly, utc(2024, 4, 29))  # Monday
    ledger.consume("plan", "key", weekly, utc(2024, 5, 1))  # Wednesday

    assert ledger.consume("plan", "key", weekly, utc(2024, 5, 5, 23)) is False  # Sunday
    assert ledger.consume("plan", "key", weekly, utc(2024, 5, 6)) is True  # next Monday


def test_quota_is_per_plan_and_key():
    ledger = UsageLedger()
    one = {"limit": 1, "period": "DAY"}
    at = utc(2024, 5, 1)
    ledger.consume("plan", "key", one, at)

    assert ledger.consume("plan", "other-key", one, at) is True
    assert ledger.consume("other-plan", "key", one, at) is True


def test_no_quota_admits_and_still_records():
    ledger = UsageLedger()
    at = utc(2024, 5, 1)

    assert all(ledger.consume("plan", "key", None, at) for _ in range(100))
    assert ledger.used("plan", "key", date(2024, 5, 1), date(2024, 5, 1)) == {date(2024, 5, 1): 100}


def test_used_reports_zero_for_idle_days():
    ledger = UsageLedger()
    ledger.consume("plan", "key", None, utc(2024, 5, 2))

    assert ledger.used("plan", "key", date(2024, 5, 1), date(2024, 5, 3)) == {
        date(2024, 5, 1): 0,
        date(2024, 5, 2): 1,
        date(2024, 5, 3): 0,
    }


def test_usage_pairs_used_and_remaining_in_the_period():
    ledger = UsageLedger()
    weekly = {"limit": 10, "period": "WEEK", "offset": 0}  # Sunday to Saturday
    for day, count in [(4, 2), (5, 3), (6, 1)]:  # Sat 4th, Sun 5th (new week), Mon 6th
        for _ in range(count):
            ledger.consume("plan", "key", weekly, utc(2024, 5, day, 12))

    assert ledger.usage("plan", weekly, date(2024, 5, 3), date(2024, 5, 7)) == {
        "key": [[0, 10], [2, 8], [3, 7], [1, 6], [0, 6]],
    }


def test_usage_remaining_never_goes_below_zero():
    ledger = UsageLedger()
    ledger.consume("plan", "key", None, utc(2024, 5, 1))  # counted while the plan had no quota
    ledger.consume("plan", "key", None, utc(2024, 5, 1))
    one = {"limit": 1, "period": "DAY"}

    assert ledger.usage("plan", one, date(2024, 5, 1), date(2024, 5, 1)) == {"key": [[2, 0]]}


def test_usage_without_quota_reports_zero_remaining():
    ledger = UsageLedger()
    ledger.consume("plan", "key", None, utc(2024, 5, 1))

    assert ledger.usage("plan", None, date(2024, 5, 1), date(2024, 5, 2)) == {"key": [[1, 0], [0, 0]]}


def test_usage_for_one_key_reports_zeros_when_idle():
    ledger = UsageLedger()
    ledger.consume("plan", "busy", DAILY_3, utc(2024, 5, 1))

    assert ledger.usage("plan", DAILY_3, date(2024, 5, 1), date(2024, 5, 1), key_id="idle") == {"idle": [[0, 3]]}


def test_usage_without_key_reports_every_counted_key_of_the_plan():
    ledger = UsageLedger()
    at = utc(2024, 5, 1)
    ledger.consume("plan", "a", DAILY_3, at)
    ledger.consume("plan", "b", DAILY_3, at)
    ledger.consume("other-plan", "c", DAILY_3, at)

    assert ledger.usage("plan", DAILY_3, date(2024, 5, 1), date(2024, 5, 1)) == {"a": [[1, 2]], "b": [[1, 2]]}
