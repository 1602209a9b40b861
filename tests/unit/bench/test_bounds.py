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


def test_edits_wait_for_their_reads_then_for_the_put_bucket_beyond_its_one_second_of_capacity() -> None:
    lb = bounds.incremental(100, warm=True).as_dict(limits("50ms"))
    # the changed-since read and the line read (50 ms each), 50 edits at once from the full bucket, the other 50 at
    # 50/s (1 s), and the last edit's own round trip
    assert lb["binding"] == "jira_rate_s" and lb["seconds"] == pytest.approx(0.05 + 0.05 + 1.0 + 0.05)
    # one number for every method (the old model): 100 at once, so only the reads and one edit remain
    flat = bounds.incremental(100, warm=True).parts(limits("50ms", jira_burst=100.0))
    assert flat["jira_rate_s"] == pytest.approx(0.15)


def test_realistic_edits_pay_the_reads_server_time_and_the_last_edits() -> None:
    lb = bounds.incremental(100, warm=True)
    parts = lb.parts(limits("realistic"))
    # read of 100 rows (0.05 + 0.075 s server) and the line read (0.05 s) each after 50 ms, 1 s of bucket, one edit
    assert parts["jira_rate_s"] == pytest.approx(0.175 + 0.1 + 1.0 + 0.35)
    # the same reads, then 100 edits over 32 slots: one slot makes 4 edits of 0.35 s one after another
    assert lb.seconds(limits("realistic")) == (pytest.approx(0.175 + 0.1 + 4 * 0.35), "jira_in_flight_s")


def test_a_cold_process_also_waits_for_the_token() -> None:
    cold = bounds.incremental(100, warm=False).seconds(limits("50ms"))[0]
    assert cold == pytest.approx(bounds.incremental(100, warm=True).seconds(limits("50ms"))[0] + 0.05)


def test_fewer_calls_than_the_bucket_holds_wait_for_no_rate() -> None:
    lb = bounds.incremental(40, warm=True)
    assert lb.parts(limits("50ms"))["jira_rate_s"] == pytest.approx(0.15)  # reads and one edit: 40 fit the bucket
    assert limits("50ms").burst_wait("PUT", 40) == 0.0 and limits("50ms").burst_wait("PUT", 150) == pytest.approx(2.0)


def test_bulk_creates_are_bound_by_the_post_bucket_under_50ms() -> None:
    value, binding = bounds.backfill(10_000, 20_000, 6).seconds(limits("50ms"))
    # token and first order page before the first create; 100 of 200 POSTs at once, 100 at 100/s; the last create
    assert binding == "jira_rate_s" and value == pytest.approx(0.05 + 0.05 + 1.0 + 0.05)


def test_realistic_backfill_waits_for_server_time() -> None:
    lb = bounds.backfill(10_000, 20_000, 6)
    parts = lb.parts(limits("realistic"))
    # The token and a first order page of one row; then 32 in flight (jira.http.max_in_flight): one slot carries
    # 313 of the 10,000 issues, so 7 bulk creates of 0.25 s + 50 ms and 313 times 25 ms of per-issue server time.
    lead = 0.05 + 0.1 + 0.00075
    assert parts["jira_in_flight_s"] == pytest.approx(lead + 7 * 0.3 + 313 * 0.025)
    assert parts["jira_in_flight_s"] > lead + 200 * 1.55 / 32  # the summed durations over 32 slots: 9.69 s
    # token, one end's two order pages (5,000 rows at 0.75 ms plus 50 ms each) and one last create of one issue
    assert parts["chain_s"] == pytest.approx(0.05 + 2 * 0.1 + 3.75 + 0.05 + 0.275)
    assert lb.seconds(limits("realistic"))[1] == "jira_in_flight_s"
    # 4 in flight: 2,500 issues and 50 calls a slot, the same as the summed durations over 4 slots
    four = lb.parts(limits("realistic", jira_in_flight=4))["jira_in_flight_s"]
    assert four == pytest.approx(lead + 200 * 1.55 / 4)


def test_calls_without_items_fill_their_slots_in_whole_calls() -> None:
    lb = bounds.LowerBound(jira={"PUT /rest/api/3/issue/{id}": 33})
    # 33 edits of 0.35 s over 32 slots: one slot makes two of them
    assert lb.parts(limits("realistic"))["jira_in_flight_s"] == pytest.approx(2 * 0.35)


def test_realistic_chains_cost_more_than_latency_alone() -> None:
    for bound in (bounds.idle(warm=True), bounds.incremental(100, warm=True), bounds.writeback(1000),
                  bounds.webhook_latency()):
        assert bound.parts(limits("realistic"))["chain_s"] > bound.parts(limits("50ms"))["chain_s"]
    assert bounds.writeback(1000).parts(limits("realistic"))["chain_s"] == pytest.approx(10 * 0.45 + 0.10075 + 0.05)
