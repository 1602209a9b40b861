"""Per-endpoint pacing by HTTP method: Jira's burst limits (jira-api.md §9) kept client-side."""

from __future__ import annotations

import pytest

from ml_connector.config.connections import JIRA_METHOD_RATES, HttpSettings, JiraConnection
from ml_connector.http.pacing import Pacer
from unit.clock import Clock


def _pacer(clock: Clock) -> Pacer:
    return Pacer(requests_per_minute=None, method_rates=JIRA_METHOD_RATES, clock=clock, sleep=clock.sleep)


def test_an_endpoint_never_exceeds_its_methods_rate() -> None:
    clock = Clock(0.0)
    pacer = _pacer(clock)
    for _ in range(125):
        pacer.wait("jira", endpoint=("PUT", "/rest/api/{id}/issue/{id}"))
    # 45 go at once (nine tenths of the far side's one-second bucket: slack for requests that arrive closer together
    # than sent), then 50/s: the 125th waits for 80 tokens.
    assert clock.now == pytest.approx(80 / 50, abs=0.01)


def test_a_burst_never_outruns_the_far_sides_bucket_by_more_than_its_slack() -> None:
    """Against a bucket like Jira's (one second's worth, full at the start), the client's sends leave at least a
    tenth of a second of slack at every point: requests may arrive that much closer together than sent."""
    clock = Clock(0.0)
    pacer = _pacer(clock)
    sent = []
    for _ in range(200):
        pacer.wait("jira", endpoint=("PUT", "/rest/api/{id}/issue/{id}"))
        sent.append(clock.now)
    rate = JIRA_METHOD_RATES["PUT"]
    for i, at in enumerate(sent):
        far_side_tokens = rate + rate * (at - sent[0]) - (i + 1)  # one second's worth at the start, minus the sent
        assert far_side_tokens >= rate * 0.1 - 1e-6


def test_the_burst_of_a_method_is_nine_tenths_of_its_rate_and_none_without_one() -> None:
    pacer = _pacer(Clock(0.0))
    assert (pacer.endpoint_burst("put"), pacer.endpoint_burst("POST")) == (45, 90)
    assert pacer.endpoint_burst("PATCH") is None


def test_endpoints_and_methods_have_buckets_of_their_own() -> None:
    clock = Clock(0.0)
    pacer = _pacer(clock)
    for _ in range(50):
        pacer.wait("jira", endpoint=("POST", "/rest/api/{id}/issue/bulk"))
        pacer.wait("jira", endpoint=("PUT", "/rest/api/{id}/issue/{id}"))
        pacer.wait("jira", endpoint=("GET", "/rest/api/{id}/field"))
        pacer.wait("jira", endpoint=("PATCH", "/rest/api/{id}/other"))  # no rate for the method: not paced
    assert clock.now == pytest.approx(5 / 50, abs=0.01)  # only PUT's 50/s binds (45 at once, then 5 more)


def test_jira_connections_default_to_the_documented_limits_even_with_other_http_keys() -> None:
    base = {"url": "https://example.atlassian.net", "auth": {"kind": "basic", "email": "a@b.c", "api_token": "t"}}
    assert JiraConnection.model_validate(base).http.method_rates == JIRA_METHOD_RATES
    tuned = JiraConnection.model_validate({**base, "http": {"read_timeout": 5}})
    assert tuned.http.method_rates == JIRA_METHOD_RATES and tuned.http.read_timeout == 5
    assert HttpSettings().method_rates == {}  # IFS: paced per host only (requests_per_minute)
