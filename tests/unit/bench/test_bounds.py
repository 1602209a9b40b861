"""The bench's lower bounds: the burst per method, the in-flight cap and the server time a chain waits for."""

from __future__ import annotations

import pytest

from bench import bounds
from bench.scenarios import PROFILES, Options


def limits(profile: str, **options: object) -> bounds.Limits:
    o = Options()
    for name, value in options.items():
        setattr(o, name, value)
    return o.limits(PROFILES[profile])


def test_edits_are_bound_by_the_put_bucket_at_50_per_second() -> None:
    lb = bounds.incremental(100, warm=True).as_dict(limits("50ms"))
    assert lb["binding"] == "jira_rate_s" and lb["seconds"] == pytest.approx(2.0)
    # one number for every method (the old model) gives the old bound
    assert bounds.incremental(100, warm=True).seconds(limits("50ms", jira_burst=100.0))[0] == pytest.approx(1.0)


def test_bulk_creates_are_bound_by_the_post_bucket_under_50ms() -> None:
    value, binding = bounds.backfill(10_000, 20_000, 6).seconds(limits("50ms"))
    assert binding == "jira_rate_s" and value == pytest.approx(2.0)  # 200 POSTs at 100/s


def test_realistic_backfill_waits_for_server_time() -> None:
    lb = bounds.backfill(10_000, 20_000, 6)
    parts = lb.parts(limits("realistic"))
    # 200 bulk creates of 50 issues, 1.5 s of server time + 50 ms latency each, 16 in flight
    assert parts["jira_in_flight_s"] == pytest.approx(200 * 1.55 / 16)
    # token, three order pages (10,000 rows at 0.75 ms plus 50 ms each) and one last create of at least one issue
    assert parts["chain_s"] == pytest.approx(0.05 + 3 * 0.1 + 7.5 + 0.05 + 0.275)
    assert lb.seconds(limits("realistic"))[1] == "jira_in_flight_s"
    assert lb.parts(limits("realistic", jira_in_flight=4))["jira_in_flight_s"] == pytest.approx(200 * 1.55 / 4)


def test_realistic_chains_cost_more_than_latency_alone() -> None:
    for bound in (bounds.idle(warm=True), bounds.incremental(100, warm=True), bounds.writeback(1000),
                  bounds.webhook_latency()):
        assert bound.parts(limits("realistic"))["chain_s"] > bound.parts(limits("50ms"))["chain_s"]
    assert bounds.writeback(1000).parts(limits("realistic"))["chain_s"] == pytest.approx(10 * 0.45 + 0.10075 + 0.05)
