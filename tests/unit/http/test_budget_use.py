"""Budget use on /metrics: what a pacer and a session report (tokens taken, seconds waited) by system and key class,
labelled with the connection, never with a key (keys name endpoints and issues)."""

from __future__ import annotations

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.http import ApiSession
from ml_connector.http.pacing import ENDPOINT, HOLD, REQUESTS, Pacer, QuotaGauge
from ml_connector.http.ratelimit import QuotaReading
from ml_connector.metrics import Metrics, render_connections
from unit.clock import Clock


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, float]] = []

    def on_budget(self, system: str, key_class: str, tokens: int, waited: float) -> None:
        self.events.append((system, key_class, tokens, waited))

    def totals(self, key_class: str) -> tuple[int, float]:
        chosen = [e for e in self.events if e[1] == key_class]
        return sum(e[2] for e in chosen), sum(e[3] for e in chosen)


def test_a_pacer_reports_each_take_and_the_time_it_waited_by_class() -> None:
    clock = Clock(0.0)
    pacer = Pacer(requests_per_minute=60, burst=10, method_rates={"PUT": 2.0}, clock=clock, sleep=clock.sleep)
    seen = Seen()
    pacer.watch("jira", seen)
    for _ in range(12):  # 10 at once, then one a second
        pacer.wait("site", endpoint=("GET", "/rest/api/3/issue/{id}"))
    assert seen.totals(REQUESTS) == (12, pytest.approx(2.0))
    assert seen.totals(ENDPOINT) == (0, 0.0)  # GET has no method rate: no endpoint bucket
    assert {e[0] for e in seen.events} == {"jira"}


def test_an_endpoint_bucket_is_its_own_class() -> None:
    clock = Clock(0.0)
    pacer = Pacer(requests_per_minute=None, method_rates={"PUT": 2.0}, clock=clock, sleep=clock.sleep)
    seen = Seen()
    pacer.watch("jira", seen)
    for _ in range(3):  # PUT: one at once (nine tenths of 2/s), then 2/s
        pacer.wait("site", endpoint=("PUT", "/rest/api/3/issue/{id}"))
    assert seen.totals(ENDPOINT) == (3, pytest.approx(1.0))
    assert seen.totals(REQUESTS) == (0, 0.0)


def test_a_hold_wait_takes_no_token_and_is_reported_as_a_hold() -> None:
    clock = Clock(0.0)
    pacer = Pacer(requests_per_minute=None, clock=clock, sleep=clock.sleep)
    seen = Seen()
    pacer.watch("jira", seen)
    pacer.defer("issue:10001", 3.0)
    pacer.wait("site", ("issue:10001",))
    assert seen.events == [("jira", HOLD, 0, 3.0)]


def test_a_session_counts_its_budget_in_metrics_labelled_with_the_connection() -> None:
    metrics = Metrics(connection="acme")
    client = httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json={})))
    settings = HttpSettings(requests_per_minute=6000, burst=1)
    api = ApiSession(client, system="ifs", settings=settings, observer=metrics)
    for _ in range(3):
        api.request("GET", "https://ifs.example/main/ifsapplications/projection/v1/X.svc/Set")
    labels = {"connection": "acme", "system": "ifs", "key_class": "requests"}
    assert metrics.registry.get_sample_value("mlc_rate_budget_tokens_taken_total", labels) == 3
    waited = metrics.registry.get_sample_value("mlc_rate_budget_waits_seconds_total", labels)
    assert waited is not None and 0.005 <= waited < 1  # 100/s after a burst of one: two waits of ~10 ms
    # A connection's own label survives the deployment's merge (no second, conflicting connection label).
    text = render_connections({"acme": metrics}).decode()
    assert 'mlc_rate_budget_tokens_taken_total{connection="acme",key_class="requests",system="ifs"} 3.0' in text


def test_a_session_reports_the_wait_on_another_calls_429_hold() -> None:
    metrics = Metrics()
    client = httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(204)))
    api = ApiSession(client, system="jira", settings=HttpSettings(), observer=metrics)
    api.pacer.defer("issue:7", 1.0)  # another call met a 429 on this issue
    api.request("PUT", "https://site.example/rest/api/3/issue/7", pace_keys=("issue:7",))
    labels = {"connection": "default", "system": "jira", "key_class": "hold"}
    waited = metrics.registry.get_sample_value("mlc_rate_budget_waits_seconds_total", labels)
    assert waited is not None and 0.5 <= waited <= 1.0  # what was left of the hold (a loaded machine eats some)
    assert metrics.registry.get_sample_value("mlc_rate_budget_tokens_taken_total", labels) is None
    assert "issue:7" not in metrics.render().decode() and "10001" not in metrics.render().decode()


def test_the_quota_left_is_known_only_within_a_window() -> None:
    clock = Clock(0.0)
    gauge = QuotaGauge(clock=clock, wall=lambda: 0.0)
    assert gauge.points_left() is None
    gauge.observe(QuotaReading(limit=100, remaining=40, reset_in=60))
    gauge.acquire()
    assert gauge.points_left() == 39
    clock.now = 61  # the window reset: nothing known until an answer of the new one
    assert gauge.points_left() is None


def test_metrics_show_the_quota_left_when_known_and_count_a_failed_read() -> None:
    metrics = Metrics(connection="acme")
    assert "mlc_jira_quota_remaining" not in metrics.render().decode()  # no OAuth: nothing to show
    metrics.quota_remaining = lambda: 1234
    assert metrics.registry.get_sample_value("mlc_jira_quota_remaining", {"connection": "acme"}) == 1234

    def unreadable() -> int | None:
        raise OSError("database gone")

    metrics.quota_remaining = unreadable
    assert "mlc_jira_quota_remaining{" not in metrics.render().decode()
    assert metrics.registry.get_sample_value("mlc_metrics_store_errors_total") == 1
