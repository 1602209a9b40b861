from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.failures import decide
from ml_connector.engine.outbound import format_ts, parse_ts
from ml_connector.engine.writeback import parse_jira_ts
from ml_connector.errors import RateLimited, Rejected

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_transient_errors_back_off_exponentially_then_park() -> None:
    policy = SyncPolicy(max_attempts=4, retry_initial=60, retry_max=600)
    rng = random.Random(1)
    delays = []
    attempts = 0
    state = "retry"
    while state == "retry":
        d = decide(RateLimited("429"), transient=True, attempts_so_far=attempts, policy=policy, now=NOW, rng=rng)
        attempts, state = d.attempts, d.state
        if d.next_attempt_at:
            delays.append((d.next_attempt_at - NOW).total_seconds())
    assert state == "parked" and attempts == 4
    assert [30 <= delays[0] <= 60, 60 <= delays[1] <= 120, 120 <= delays[2] <= 240] == [True, True, True]


def test_permanent_errors_park_at_once_with_the_reason() -> None:
    d = decide(Rejected("400 priority: invalid"), transient=False, attempts_so_far=0, policy=SyncPolicy(), now=NOW)
    assert d.state == "parked" and d.attempts == 1 and d.error_class == "Rejected"
    assert "priority" in d.message and d.next_attempt_at is None


def test_timestamps_round_trip_and_jira_offsets_parse() -> None:
    stamp = parse_ts("2026-01-01T10:00:00Z")
    assert stamp == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_ts(format_ts(stamp)) == stamp
    assert parse_ts("not a time") is None
    jira = parse_jira_ts("2026-01-01T02:00:00.000-0800")
    assert jira is not None and jira - stamp == timedelta(0)
