from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.failures import (
    backoff_ceiling,
    create_failure_error,
    decide,
    is_systemic,
)
from ml_connector.engine.report import RunReport
from ml_connector.engine.timestamps import format_ts, parse_ts
from ml_connector.engine.writeback.changes import parse_jira_ts
from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    ConfigError,
    MappingError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)
from ml_connector.jira.models import JiraFailure
from ml_connector.logging import register_secret
from ml_connector.reasons import RATE_LIMITED, UNAVAILABLE, Reason

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_transient_errors_back_off_exponentially_with_full_jitter_then_park() -> None:
    policy = SyncPolicy(max_attempts=4, retry_initial=60, retry_max=600)
    rng = random.Random(1)
    delays = []
    attempts = 0
    state = "retry"
    while state == "retry":
        d = decide(Unavailable("503", status=503), attempts_so_far=attempts, policy=policy, now=NOW, rng=rng)
        attempts, state = d.attempts, d.state
        if d.next_attempt_at:
            delays.append((d.next_attempt_at - NOW).total_seconds())
            assert d.backoff_seconds == pytest.approx(delays[-1]) and d.outcome == "failed"
    assert state == "parked" and attempts == 4 and d.message.startswith("gave up after 4 attempts: 503")
    assert len(delays) == 3
    assert [0 <= delays[0] <= 60, 0 <= delays[1] <= 120, 0 <= delays[2] <= 240] == [True, True, True]
    assert d.next_attempt_at is None and d.outcome == "parked"


def test_full_jitter_reaches_down_to_zero() -> None:
    """Half jitter (the old policy) never waited less than half the window; full jitter spreads over all of it."""
    policy = SyncPolicy(max_attempts=50, retry_initial=100, retry_max=100)
    rng = random.Random(7)
    waits = [
        (decide(Unavailable("x"), attempts_so_far=0, policy=policy, now=NOW, rng=rng).backoff_seconds or 0)
        for _ in range(200)
    ]
    assert min(waits) < 10 and max(waits) > 90


@given(
    attempts_so_far=st.integers(min_value=0, max_value=60),
    initial=st.floats(min_value=0, max_value=3600),
    cap=st.floats(min_value=0, max_value=86400),
    seed=st.integers(),
)
def test_next_attempt_is_within_the_full_jitter_window(
    attempts_so_far: int, initial: float, cap: float, seed: int
) -> None:
    policy = SyncPolicy(max_attempts=100, retry_initial=initial, retry_max=cap)
    d = decide(
        TimeoutError("read timed out"), attempts_so_far=attempts_so_far, policy=policy, now=NOW, rng=random.Random(seed)
    )
    assert d.attempts == attempts_so_far + 1
    if d.attempts >= policy.max_attempts:
        assert d.state == "parked" and d.next_attempt_at is None
        return
    window = min(cap, initial * 2**attempts_so_far)
    assert backoff_ceiling(d.attempts, policy) == pytest.approx(window)
    assert d.state == "retry" and d.next_attempt_at is not None
    assert NOW <= d.next_attempt_at <= NOW + timedelta(seconds=window) + timedelta(microseconds=1)


def test_a_rate_limit_defers_without_using_an_attempt() -> None:
    policy = SyncPolicy(max_attempts=2, retry_initial=30, retry_max=600)
    d = decide(RateLimited("429", retry_after=12), attempts_so_far=1, policy=policy, now=NOW)
    assert (d.state, d.attempts, d.deferred, d.outcome) == ("retry", 1, True, "deferred")
    assert d.next_attempt_at == NOW + timedelta(seconds=12) and d.error_class == "RateLimited"
    for _ in range(10):  # any number of rate limits never parks a record
        d = decide(RateLimited("429"), attempts_so_far=d.attempts, policy=policy, now=NOW)
    assert d.state == "retry" and d.attempts == 1 and d.next_attempt_at == NOW + timedelta(seconds=30)
    huge = decide(RateLimited("429", retry_after=10**6), attempts_so_far=0, policy=policy, now=NOW)
    assert huge.next_attempt_at == NOW + timedelta(seconds=600)


@pytest.mark.parametrize(
    ("error", "error_class"),
    [
        (Rejected("400 priority: invalid", status=400), "Rejected"),
        (NotFound("404 no such entity", status=404), "NotFound"),
        (MappingError("summary is empty", field="summary"), "MappingError"),
        (AuthError("403 you cannot edit this issue", status=403), "AuthError"),
    ],
)
def test_permanent_errors_park_at_once_with_the_reason(error: Exception, error_class: str) -> None:
    d = decide(error, attempts_so_far=0, policy=SyncPolicy(), now=NOW)
    assert (d.state, d.attempts, d.error_class, d.next_attempt_at) == ("parked", 1, error_class, None)
    assert str(error) in d.message


def test_a_lasting_412_is_contention_and_is_retried() -> None:
    d = decide(ConcurrencyConflict("412 stale etag", status=412), attempts_so_far=0, policy=SyncPolicy(), now=NOW)
    assert d.state == "retry" and d.error_class == "ConcurrencyConflict"


@pytest.mark.parametrize(
    "error",
    [
        AuthError("401 credentials refused", status=401),
        AuthError("no token"),
        ConfigError("flows.x.mapping: bad"),
        OperationalError("SELECT 1", {}, Exception("database is locked")),
    ],
)
def test_systemic_errors_are_raised_not_recorded(error: Exception) -> None:
    assert is_systemic(error)
    with pytest.raises(type(error)):
        decide(error, attempts_so_far=0, policy=SyncPolicy(), now=NOW)


def test_an_unexpected_exception_is_an_internal_error_with_a_redacted_one_line_message() -> None:
    register_secret("s3cr3t-value-123")
    error = ValueError("bad\x00 body\nfrom https://x?access_token=abcdef&y=1 with s3cr3t-value-123")
    policy = SyncPolicy(max_attempts=2)
    first = decide(error, attempts_so_far=0, policy=policy, now=NOW)
    assert first.state == "retry" and first.error_class == "InternalError"
    assert first.message.startswith("ValueError: bad body from")
    assert "abcdef" not in first.message and "s3cr3t" not in first.message and "\x00" not in first.message
    assert decide(error, attempts_so_far=1, policy=policy, now=NOW).state == "parked"


@pytest.mark.parametrize(
    ("failure", "error_class", "state"),
    [
        (JiraFailure(status=None, error_messages=("reset",), uncertain=True), "Unavailable", "retry"),
        (JiraFailure(status=500, error_messages=("boom",), transient=True), "Unavailable", "retry"),
        (JiraFailure(status=429, transient=True), "RateLimited", "retry"),
        (JiraFailure(status=400, errors={"priority": "invalid"}), "Rejected", "parked"),
        (JiraFailure(status=403, error_messages=("no permission",)), "AuthError", "parked"),
    ],
)
def test_bulk_create_element_failures_map_to_the_policy_classes(
    failure: JiraFailure, error_class: str, state: str
) -> None:
    d = decide(create_failure_error(failure), attempts_so_far=0, policy=SyncPolicy(), now=NOW)
    assert (d.error_class, d.state) == (error_class, state)


def test_the_report_is_partial_and_groups_reasons_without_ids() -> None:
    report = RunReport("purchase_orders", "outbound")
    report.add("created", 3)
    assert report.status == "succeeded"
    for issue in ("10001", "10002"):
        error = Unavailable(f"500 Injected failure (PUT /rest/api/3/issue/{issue})", system="jira")
        report.add_failure(decide(error, attempts_so_far=0, policy=SyncPolicy(), now=NOW))
    report.add_failure(decide(RateLimited("429 slow down"), attempts_so_far=0, policy=SyncPolicy(), now=NOW))
    assert report.status == "partial" and report.counts["failed"] == 2 and report.counts["deferred"] == 1
    assert report.causes.most_common() == [(Reason(UNAVAILABLE, "jira"), 2), (Reason(RATE_LIMITED), 1)]
    assert report.examples[UNAVAILABLE] == "jira: 500 Injected failure (PUT /rest/api/3/issue/…)"
    waiting_only = RunReport("work_orders", "outbound")
    waiting_only.add("waiting")
    assert waiting_only.status == "partial"


def test_timestamps_round_trip_and_jira_offsets_parse() -> None:
    stamp = parse_ts("2026-01-01T10:00:00Z")
    assert stamp == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_ts(format_ts(stamp)) == stamp
    assert parse_ts("not a time") is None
    jira = parse_jira_ts("2026-01-01T02:00:00.000-0800")
    assert jira is not None and jira - stamp == timedelta(0)
