"""Jira's points quota on the client side: reading its headers (never crashing on bad ones), the gauge that paces
calls to the quota, and ApiSession waiting for the reset instead of meeting quota 429s."""

from __future__ import annotations

import heapq
import math
import random
from datetime import UTC, datetime

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import RateLimited, Unavailable
from ml_connector.http import ApiSession, RateLimitBudget, rate_limit_scope, ratelimit
from ml_connector.http.pacing import QuotaGauge
from ml_connector.http.ratelimit import QuotaReading, read_quota, structured_items
from ml_connector.metrics import Metrics
from unit.clock import Clock

NOW = datetime(2026, 12, 5, 1, 50, tzinfo=UTC)
FAST = HttpSettings(max_attempts=3, backoff_initial=0.01, backoff_max=0.02, max_retry_seconds=30)


def test_reads_the_quota_headers_of_a_charged_answer() -> None:
    headers = {
        "X-RateLimit-Limit": "65000",
        "X-RateLimit-Remaining": "11000",
        "X-RateLimit-NearLimit": "true",
        "RateLimit-Policy": '"global-app-quota";q=65000;w=3600',
        "RateLimit": '"tenant-app-quota";t=900, "global-app-quota";r=11000;t=600',
    }
    assert read_quota(headers, 200, now=NOW) == QuotaReading(65000, 11000, 600.0, window=3600, near_limit=True)


def test_a_quota_429_and_its_reset_time() -> None:
    headers = {"RateLimit-Reason": "jira-quota-tenant-based", "X-RateLimit-Reset": "2026-12-05T02:00:00.000Z"}
    assert read_quota(headers, 429, now=NOW) == QuotaReading(None, 0, 600.0, exhausted=True)
    beta = {"Beta-RateLimit": '"global-app-quota";t=30', "X-RateLimit-Remaining": "5"}
    assert read_quota(beta, 200, now=NOW) == QuotaReading(None, 5, 30.0)
    only_structured = {"RateLimit": '"global-app-quota";r=40;t=30, "tenant-app-quota";r=7;t=30'}
    assert read_quota(only_structured, 200, now=NOW) == QuotaReading(None, 7, 30.0)


def test_answers_without_quota_headers_and_burst_429s_say_nothing_about_the_quota() -> None:
    assert read_quota({"Content-Type": "application/json"}, 200) is None
    burst = {"RateLimit-Reason": "jira-burst-based", "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "100"}
    assert read_quota(burst, 429) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "lots", "X-RateLimit-Limit": "-"},
        {"X-RateLimit-Remaining": "3", "RateLimit": '"global-app-quota";t=soon;r=;;'},
        {"X-RateLimit-Remaining": "3", "RateLimit": ',,;=,"";t=1'},
        {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "half past two"},
        {"Beta-RateLimit": '"\x00garbage";t'},
        {"X-RateLimit-Remaining": "3", "RateLimit-Policy": '"global-app-quota";q=65000;w=-3600'},
        {"X-RateLimit-Remaining": "3", "RateLimit-Policy": '"global-app-quota";q=65000;w=0'},
    ],
)
def test_malformed_headers_are_ignored_and_logged(headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[str] = []
    monkeypatch.setattr(ratelimit.log, "info", lambda event, **_: logged.append(event))
    reading = read_quota(headers, 200, now=NOW)
    assert reading is not None and reading.reset_in is None and reading.window is None
    assert reading.remaining in (None, 3)
    assert "http.quota_header_ignored" in logged


def test_structured_items_keep_the_readable_ones_in_any_order() -> None:
    items = structured_items("RateLimit", '"b";t=5, broken;x=y, "a";r=1;t=2')
    assert items == [("b", {"t": 5.0}), ("a", {"r": 1.0, "t": 2.0})]


def test_the_gauge_holds_calls_back_at_zero_until_the_reset() -> None:
    clock = Clock(1000.0)
    gauge = QuotaGauge(clock=clock)
    assert gauge.wait_needed() == 0  # nothing known: the first call is the probe
    assert gauge.observe(QuotaReading(limit=10, remaining=2, reset_in=60)) == 1  # the window began before us
    assert gauge.acquire() == 0 and gauge.acquire() == 0  # two calls in flight take the last two points
    assert gauge.acquire() == 60 and gauge.wait_needed() == 60
    assert gauge.observe(QuotaReading(limit=10, remaining=1, reset_in=60)) == 1
    assert gauge.observe(QuotaReading(limit=10, remaining=0, reset_in=60)) == 1
    clock.now += 59.5
    assert gauge.wait_needed() == pytest.approx(0.5)
    clock.now += 1
    assert gauge.acquire() == 0  # a new window: probe again
    assert gauge.observe(QuotaReading(limit=10, remaining=7, reset_in=3600)) == 3  # the new window's first answer


def test_the_gauge_counts_the_drop_of_the_lowest_remaining_and_waits_for_the_next_hour_when_not_told() -> None:
    clock = Clock(1000.0)
    gauge = QuotaGauge(clock=clock, wall=lambda: 7200.0 + 3000)
    gauge.observe(QuotaReading(limit=100, remaining=50))
    assert gauge.observe(QuotaReading(limit=100, remaining=40)) == 10  # a search page of 9 issues
    assert gauge.observe(QuotaReading(limit=100, remaining=45)) == 0  # a late answer
    assert gauge.observe(QuotaReading(remaining=0, exhausted=True)) == 0
    assert gauge.wait_needed() == 600  # no reset time given: the top of the UTC hour


def _charged(remaining: int, reset_in: float, window: float = 3600) -> httpx2.Response:
    headers = {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": str(remaining),
        "RateLimit-Policy": f'"q";q=3;w={window}',
        "RateLimit": f'"q";t={reset_in}',
    }
    return httpx2.Response(201, headers=headers, json={"id": "1"})


def _quota_server(size: int, window: float) -> tuple[httpx2.MockTransport, list[int]]:
    """A server with a ``size``-point quota per ``window`` real seconds; the statuses it answered."""
    import time

    statuses: list[int] = []
    state = {"start": time.monotonic(), "used": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        now = time.monotonic()
        if now - state["start"] >= window:
            state["start"], state["used"] = now, 0
        left = window - (now - state["start"])
        if state["used"] >= size:
            statuses.append(429)
            return httpx2.Response(429, headers={"RateLimit-Reason": "jira-quota-global-based"}, json={})
        state["used"] += 1
        statuses.append(201)
        return _charged(size - int(state["used"]), left, window)

    return httpx2.MockTransport(handler), statuses


def test_the_session_waits_for_the_reset_instead_of_meeting_quota_429s() -> None:
    transport, statuses = _quota_server(size=3, window=0.5)
    client = httpx2.Client(base_url="https://api.atlassian.example", transport=transport)
    metrics = Metrics()
    api = ApiSession(client, system="jira", settings=FAST, observer=metrics)
    budget = RateLimitBudget(30)
    with rate_limit_scope(budget):
        for _ in range(7):
            api.request("POST", "/rest/api/3/issue", json={})
    assert statuses == [201] * 7
    assert budget.points == 1 + 2 + 3 + 1  # the first answer's window began before us: 1, then what headers show
    assert 0.4 < budget.waited < 2
    assert metrics.registry.get_sample_value("mlc_jira_points_used_total") == budget.points


def test_a_reset_beyond_the_budget_ends_the_call_honestly() -> None:
    transport, statuses = _quota_server(size=1, window=60)
    client = httpx2.Client(base_url="https://api.atlassian.example", transport=transport)
    api = ApiSession(client, system="jira", settings=FAST)
    with rate_limit_scope(RateLimitBudget(5)):
        api.request("POST", "/rest/api/3/issue", json={})
        with pytest.raises(RateLimited, match="points quota is spent"):
            api.request("POST", "/rest/api/3/issue", json={})
    assert statuses == [201]


def test_a_quota_429_nobody_saw_coming_is_waited_out_until_the_reset() -> None:
    """Other users of the app's global pool spent it: the first call meets the 429, waits for the reset, resends."""
    answers = [
        httpx2.Response(429, headers={"RateLimit-Reason": "jira-quota-global-based", "Retry-After": "1"}, json={}),
        _charged(2, 30),
    ]
    seen: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(len(seen))
        return answers[min(len(seen), 2) - 1]

    api = ApiSession(httpx2.Client(transport=httpx2.MockTransport(handler)), system="jira", settings=FAST)
    budget = RateLimitBudget(30)
    with rate_limit_scope(budget):
        api.request("POST", "https://api.atlassian.example/rest/api/3/issue", json={})
    assert len(seen) == 2 and 1 <= budget.waited < 3
    assert budget.points == 1


def test_calls_sent_before_the_first_answer_are_taken_off_its_remaining() -> None:
    """A new process sends its first calls blind (no count known yet); the first answer's Remaining may not include
    the others still in flight, so the gauge takes them off, and the window's last points are not overdrawn."""
    gauge = QuotaGauge(clock=lambda: 0.0)
    for _ in range(16):  # sent concurrently, before any answer
        assert gauge.acquire() == 0
    gauge.observe(QuotaReading(limit=600, remaining=20, reset_in=10.0))  # the first answer: 15 calls still out
    assert gauge.remaining == 5
    sent = 0
    while gauge.acquire() == 0:
        sent += 1
    assert sent == 5  # 15 in flight + 5 more = the 20 the server had left


def test_a_late_answer_of_this_window_is_not_taken_for_a_new_one() -> None:
    """An answer that waited 1.5 s in a busy process points at a reset 1.5 s later; the count must not jump back up to
    its stale Remaining (the 429s of a loaded CI run came from exactly that)."""
    clock = Clock(1000.0)
    gauge = QuotaGauge(clock=clock)
    gauge.observe(QuotaReading(limit=600, remaining=500, reset_in=10.0, window=20))
    for _ in range(100):
        assert gauge.acquire() == 0
    gauge.observe(QuotaReading(limit=600, remaining=499, reset_in=11.5, window=20))  # the first of the 100, late
    assert gauge.remaining == 400  # 99 calls still out, each may have been charged after it
    sent = 0
    while gauge.acquire() == 0:
        sent += 1
    assert sent == 400


def test_a_late_answer_of_a_window_that_has_reset_changes_nothing() -> None:
    clock = Clock(1000.0)
    gauge = QuotaGauge(clock=clock)
    gauge.observe(QuotaReading(limit=600, remaining=0, reset_in=5.0, window=20))
    assert gauge.acquire() == pytest.approx(5.0)
    clock.now += 5.5
    assert gauge.acquire() == 0  # the window has reset: the first calls go before any answer of the new one
    assert gauge.observe(QuotaReading(limit=600, remaining=0, reset_in=1.0, window=20)) == 1  # charged in the old one
    assert gauge.remaining is None and gauge.acquire() == 0  # its Remaining says nothing about the new window
    assert gauge.observe(QuotaReading(limit=600, remaining=598, reset_in=19.4, window=20)) == 2
    assert gauge.remaining == 598  # both calls answered


def test_calls_out_when_the_window_turns_are_taken_off_the_new_windows_first_answer() -> None:
    clock = Clock(1000.0)
    gauge = QuotaGauge(clock=clock)
    gauge.observe(QuotaReading(limit=600, remaining=50, reset_in=1.0, window=20))
    for _ in range(30):
        assert gauge.acquire() == 0
    gauge.observe(QuotaReading(limit=600, remaining=598, reset_in=19.9, window=20))  # charged in the new window
    assert gauge.remaining == 598 - 29


def test_a_call_without_an_answer_gives_its_point_back_to_the_count_of_calls_out() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    api = ApiSession(httpx2.Client(transport=httpx2.MockTransport(handler)), system="jira", settings=FAST)
    quota = api.pacer.quota
    assert isinstance(quota, QuotaGauge)
    quota.observe(QuotaReading(limit=600, remaining=100, reset_in=600, window=3600))
    with rate_limit_scope(RateLimitBudget(30)), pytest.raises(Unavailable):
        api.request("GET", "https://api.atlassian.example/rest/api/3/myself")
    assert quota.in_flight == 0 and quota.remaining == 100 - FAST.max_attempts


def test_a_call_that_cannot_be_sent_gives_its_point_back_too() -> None:
    sent: list[httpx2.Request] = []
    api = ApiSession(httpx2.Client(transport=httpx2.MockTransport(sent.append)), system="jira", settings=FAST)
    quota = api.pacer.quota
    assert isinstance(quota, QuotaGauge)
    quota.observe(QuotaReading(limit=600, remaining=100, reset_in=600, window=3600))
    with rate_limit_scope(RateLimitBudget(30)), pytest.raises(TypeError):
        api.request("POST", "https://api.atlassian.example/rest/api/3/issue", json={"fields": object()})
    assert not sent and quota.in_flight == 0


def _run_callers_against_a_quota(seed: int, callers: int = 32, calls: int = 2500) -> tuple[int, int, int]:
    """An event model: ``callers`` threads send calls through one gauge to a server with 600 points per 20 s window,
    whose answers (reset time in whole seconds, as Jira's ``t``) come back after 100 ms plus up to 300 ms, in any
    order. Returns (points charged, points the gauge reported, quota 429s)."""
    size, window = 600, 20.0
    rng = random.Random(seed)
    clock = Clock(1000.3)
    gauge = QuotaGauge(clock=clock)
    used: dict[float, int] = {}
    events: list[tuple[float, int, int, QuotaReading | None]] = [(clock.now + i / 100, i, i, None) for i in range(32)]
    charged = reported = refused = done = 0
    order = len(events)
    while done < calls:
        at, _, caller, reading = heapq.heappop(events)
        clock.now = at
        if reading is not None:  # an answer: the caller sends its next call
            reported += gauge.observe(reading)
            done += 0 if reading.exhausted else 1
            wait = 0.0
        else:
            wait = gauge.acquire()
        if reading is None and wait == 0:
            start = at - at % window
            left = float(math.ceil(start + window - at))
            if used.get(start, 0) >= size:
                refused += 1
                answer = QuotaReading(limit=size, remaining=0, reset_in=left, window=window, exhausted=True)
            else:
                used[start] = used.get(start, 0) + 1
                charged += 1
                answer = QuotaReading(limit=size, remaining=size - used[start], reset_in=left, window=window)
            at += 0.1 + rng.uniform(0, 0.3)
        else:
            answer, at = None, at + wait
        order += 1
        heapq.heappush(events, (at, order, caller, answer))
    return charged, reported, refused


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_answers_out_of_order_across_windows_meet_no_quota_429s_and_report_what_was_charged(seed: int) -> None:
    charged, reported, refused = _run_callers_against_a_quota(seed)
    assert refused == 0
    assert abs(reported - charged) <= charged * 0.02


def test_a_quota_429_after_the_gauge_saw_its_window_reset_still_holds_every_call_back() -> None:
    """A reset time told by X-RateLimit-Reset (a wall clock) may come early: the gauge then sends calls into a pool
    that is still spent. The quota 429 they meet is Jira's word for now, not a late answer of the old window."""
    clock = Clock(1000.0)
    gauge = QuotaGauge(clock=clock)
    gauge.observe(QuotaReading(limit=600, remaining=0, reset_in=10.0, window=3600))
    clock.now += 10.5
    assert gauge.acquire() == 0  # the gauge thinks the window has reset
    assert gauge.observe(QuotaReading(limit=600, remaining=0, reset_in=2.0, exhausted=True)) == 0
    assert gauge.acquire() == pytest.approx(2.0)
