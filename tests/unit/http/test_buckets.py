"""Token buckets and holds by key (http/buckets.py), and the pacer's keys under the far side's identity."""

from __future__ import annotations

import pytest

from ml_connector.http.buckets import LocalBuckets, Taken, ifs_scope, jira_scope, refill, wait_for
from ml_connector.http.pacing import Pacer
from unit.clock import Clock


def test_refill_adds_elapsed_time_at_the_rate_up_to_the_capacity() -> None:
    assert refill(0.0, 0.5, 4.0, 10.0) == pytest.approx(2.0)
    assert refill(-3.0, 1.0, 2.0, 10.0) == pytest.approx(-1.0)  # promised tokens are paid back first
    assert refill(9.0, 60.0, 2.0, 10.0) == 10.0
    assert refill(5.0, -2.0, 2.0, 10.0) == 5.0  # a clock step back adds nothing and takes nothing


def test_wait_for_a_token_taken_below_zero_is_the_time_to_refill_it() -> None:
    assert wait_for(0.0, 2.0) == 0.0
    assert wait_for(3.5, 2.0) == 0.0
    assert wait_for(-1.0, 4.0) == pytest.approx(0.25)


def test_a_full_bucket_gives_its_capacity_at_once_then_one_token_per_interval() -> None:
    clock = Clock(100.0)
    buckets = LocalBuckets(clock=clock)
    waits = [buckets.take("k", 2.0, 3.0).wait for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.5, 1.0, 1.5])
    clock.now += 10  # everything promised is paid back, and the bucket is full again (never fuller)
    assert [buckets.take("k", 2.0, 3.0).wait for _ in range(4)] == pytest.approx([0, 0, 0, 0.5])


def test_keys_are_buckets_of_their_own() -> None:
    buckets = LocalBuckets(clock=Clock(100.0))
    assert buckets.take("a", 1.0, 1.0).wait == 0 and buckets.take("b", 1.0, 1.0).wait == 0
    assert buckets.take("a", 1.0, 1.0).wait == pytest.approx(1.0)


def test_a_hold_is_never_shortened_and_ends_on_time() -> None:
    clock = Clock(100.0)
    buckets = LocalBuckets(clock=clock)
    buckets.hold("issue:1", 5.0)
    buckets.hold("issue:1", 1.0)
    assert buckets.held_for(("issue:1", "issue:2")) == pytest.approx(5.0)
    assert buckets.held_for(("issue:2",)) == 0.0
    clock.now += 5.0
    assert buckets.held_for(("issue:1",)) == 0.0


def test_a_take_under_a_hold_takes_nothing_and_says_how_long() -> None:
    clock = Clock(100.0)
    buckets = LocalBuckets(clock=clock)
    buckets.hold("issue:1", 2.0)
    assert buckets.take("PUT e", 1.0, 1.0, ("issue:1", "issue:2")).held == pytest.approx(2.0)
    clock.now += 2.0
    assert buckets.take("PUT e", 1.0, 1.0, ("issue:1",)) == Taken(wait=0.0)  # the bucket is still full


def test_the_pacer_waits_out_a_hold_then_takes_its_token() -> None:
    clock = Clock(100.0)
    buckets = LocalBuckets(clock=clock)
    pacer = Pacer(requests_per_minute=60, burst=1, scope="ifs:x", buckets=buckets, clock=clock, sleep=clock.sleep)
    pacer.defer("ifs", 5.0)
    assert pacer.wait("h", ("ifs",)) == pytest.approx(5.0)
    assert pacer.wait("h", ("ifs",)) == pytest.approx(1.0)  # the token taken after the hold was the only one


def test_pacers_with_one_scope_share_its_budget_and_other_scopes_do_not() -> None:
    """Two connections (or two sessions) with the same IFS client id draw on one bucket; another client has its
    own. The scope is the far side's identity, so the host the request went to plays no part."""
    clock = Clock(100.0)
    buckets = LocalBuckets(clock=clock)
    scope = ifs_scope("https://t.ifs.cloud/auth/realms/r/protocol/openid-connect/token", "mlc")

    def pacer(scope: str) -> Pacer:
        return Pacer(requests_per_minute=60, burst=2, scope=scope, buckets=buckets, clock=clock, sleep=clock.sleep)

    first, second = pacer(scope), pacer(scope)
    other = pacer(ifs_scope("https://t.ifs.cloud/auth/realms/r/protocol/openid-connect/token", "other"))
    assert first.wait("a.example") == 0 and second.wait("b.example") == 0
    assert first.wait("a.example") == pytest.approx(1.0)  # the third request of the shared budget waits
    assert other.wait("a.example") == 0


def test_holds_are_scoped_to_the_far_side() -> None:
    buckets = LocalBuckets(clock=Clock(100.0))
    site_a = Pacer(requests_per_minute=None, scope=jira_scope("https://a.atlassian.net/"), buckets=buckets)
    again_a = Pacer(requests_per_minute=None, scope=jira_scope("https://a.atlassian.net"), buckets=buckets)
    site_b = Pacer(requests_per_minute=None, scope=jira_scope("https://b.atlassian.net"), buckets=buckets)
    site_a.defer("issue:10", 30)
    assert again_a.deferred_for(("issue:10",)) == pytest.approx(30)
    assert site_b.deferred_for(("issue:10",)) == 0.0
    assert again_a.deferred_for(()) == 0.0


def test_the_far_sides_identities() -> None:
    assert ifs_scope("https://t/auth/realms/r/protocol/openid-connect/token", "c") == (
        "ifs:https://t/auth/realms/r/protocol/openid-connect/token:c"
    )
    assert jira_scope("https://x.atlassian.net/") == "jira:https://x.atlassian.net"
