"""Rate budgets shared through PostgreSQL (store/buckets.py): the same arithmetic as the local bucket, computed by
the database under its row lock, so concurrent takers on separate connections never overdraw a bucket."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_pg, reset_postgres
from sqlalchemy import Engine, create_engine, text

from ml_connector.errors import ConfigError, Unavailable
from ml_connector.http.buckets import refill, wait_for
from ml_connector.http.ratelimit import QuotaReading
from ml_connector.store import Store
from ml_connector.store.buckets import PostgresBuckets, SharedQuota, shared_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store() -> Iterator[Store]:
    dsn = require_pg()
    reset_postgres(dsn)
    store = Store.open(dsn)
    yield store
    store.close()


@pytest.fixture
def engine(pg_store: Store) -> Iterator[Engine]:
    engine = shared_engine(pg_store.engine)
    yield engine
    engine.dispose()


def test_a_full_bucket_gives_its_capacity_then_one_token_per_interval(engine: Engine) -> None:
    buckets = PostgresBuckets(engine)
    waits = [buckets.take("ifs:t:c:requests", 2.0, 3.0).wait for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.5, 1.0, 1.5], abs=0.05)  # the test's own time refills a little


def test_the_refill_is_the_local_arithmetic_on_the_database_clock(engine: Engine) -> None:
    buckets = PostgresBuckets(engine)
    for _ in range(5):
        buckets.take("k", 1.0, 5.0)  # empty
    with engine.connect() as conn:
        conn.execute(text("UPDATE rate_buckets SET tokens = -2, updated_at = clock_timestamp() - interval '2.5 s'"))
    expected = wait_for(refill(-2.0, 2.5, 1.0, 5.0) - 1, 1.0)  # 2.5 tokens back, one taken: -0.5, 0.5 s
    assert buckets.take("k", 1.0, 5.0).wait == pytest.approx(expected, abs=0.05)  # less the test's own time
    with engine.connect() as conn:
        conn.execute(text("UPDATE rate_buckets SET updated_at = clock_timestamp() - interval '1 hour'"))
    assert [buckets.take("k", 1.0, 5.0).wait for _ in range(6)][-1] == pytest.approx(1.0, abs=0.1)  # capped at 5


def test_concurrent_takers_on_their_own_connections_share_one_bucket(pg_store: Store) -> None:
    """Eight threads with an engine each (as eight processes would have): 10 tokens at once, then 1/s; every
    token is promised once, so the waits are 10 zeros and then one second apart."""
    engines = [shared_engine(pg_store.engine) for _ in range(8)]
    waits: list[float] = []
    lock = threading.Lock()

    def take(engine: Engine) -> None:
        buckets = PostgresBuckets(engine)
        for _ in range(5):
            wait = buckets.take("shared", 1.0, 10.0).wait
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    waits.sort()
    assert len(waits) == 40
    assert waits.count(0.0) in (10, 11)  # 11 if the test itself took over a second
    promised = [w for w in waits if w > 0]
    steps = [b - a for a, b in itertools.pairwise(promised)]
    assert all(s == pytest.approx(1.0, abs=0.2) for s in steps), steps
    assert promised[-1] == pytest.approx(30, abs=1.2)


def test_holds_are_shared_never_shortened_and_expire(engine: Engine) -> None:
    mine, theirs = PostgresBuckets(engine), PostgresBuckets(engine)
    mine.hold("jira:s:issue:1", 30)
    theirs.hold("jira:s:issue:1", 0.2)  # a shorter hold from another process does not cut it
    assert theirs.held_for(("jira:s:issue:1", "jira:s:issue:2")) == pytest.approx(30, abs=0.5)
    assert theirs.held_for(("jira:s:issue:2",)) == 0.0
    mine.hold("jira:s:burst:bulk", 0.2)
    time.sleep(0.3)
    assert mine.held_for(("jira:s:burst:bulk",)) == 0.0


def test_the_quota_counts_down_across_processes_and_waits_for_the_reset(engine: Engine) -> None:
    first, second = SharedQuota(engine, "jira:s:points"), SharedQuota(engine, "jira:s:points")
    other_site = SharedQuota(engine, "jira:t:points")
    assert first.acquire() == 0  # nothing known yet: calls go
    first.observe(QuotaReading(limit=100, remaining=3, reset_in=60))
    assert [first.acquire(), second.acquire(), first.acquire()] == [0, 0, 0]
    assert second.acquire() == pytest.approx(60, abs=1)  # the other process spent the last point
    assert second.wait_needed() == pytest.approx(60, abs=1)
    assert other_site.acquire() == 0
    second.observe(QuotaReading(limit=100, remaining=50, reset_in=60))  # a late answer cannot raise the count
    assert first.acquire() == pytest.approx(60, abs=1)
    second.observe(QuotaReading(limit=100, remaining=50, reset_in=3660))  # an answer of the next window
    assert first.acquire() == 0 and first.limit == 100


def test_an_answer_that_waited_in_a_busy_process_is_not_taken_for_the_next_window(engine: Engine) -> None:
    """Reset times are whole seconds and an answer may wait before it is read: one pointing 1.5 s past the others of
    its window must not raise the shared count to its stale Remaining (the window is 20 s, so 5 s still name it)."""
    mine, theirs = SharedQuota(engine, "jira:s:points"), SharedQuota(engine, "jira:s:points")
    mine.observe(QuotaReading(limit=600, remaining=2, reset_in=10, window=20))
    assert [mine.acquire(), theirs.acquire()] == [0, 0]
    theirs.observe(QuotaReading(limit=600, remaining=40, reset_in=11.5, window=20))
    assert mine.acquire() == pytest.approx(11.5, abs=1)
    theirs.observe(QuotaReading(limit=600, remaining=590, reset_in=29, window=20))  # the next window's answer
    assert mine.acquire() == 0


def test_a_take_waits_for_a_hold_first_and_takes_nothing_meanwhile(engine: Engine) -> None:
    """A 429's hold set by one process stops another's takes on that far side; once it ends, the bucket is as full
    as it was (a token taken during the hold would be spent in a burst at its end)."""
    # Expected times are bracketed by the clock around each call, not fixed: a loaded host (the suite runs on two
    # cores) can take a tenth of a second between two statements.
    mine, theirs = PostgresBuckets(engine), PostgresBuckets(engine)
    first_started = time.monotonic()
    assert mine.take("jira:s:PUT /issue", 1.0, 1.0, ("jira:s:issue:7",)).wait == 0  # no hold: taken
    first_done = time.monotonic()
    hold_started = time.monotonic()
    theirs.hold("jira:s:issue:7", 0.3)
    taken = mine.take("jira:s:PUT /issue", 1.0, 1.0, ("jira:s:issue:7", "jira:s:issue:8"))
    assert 0.3 - (time.monotonic() - hold_started) - 0.01 <= taken.held <= 0.3
    time.sleep(0.35)
    after_started = time.monotonic()
    after = mine.take("jira:s:PUT /issue", 1.0, 1.0, ("jira:s:issue:7",))
    after_done = time.monotonic()
    # one token a second since the first take, none taken during the hold
    assert after.held == 0
    assert 1.0 - (after_done - first_started) - 0.01 <= after.wait <= 1.0 - (after_started - first_done) + 0.01


def test_a_spent_quota_past_its_reset_opens_again(engine: Engine) -> None:
    quota = SharedQuota(engine, "jira:s:points")
    quota.observe(QuotaReading(limit=10, remaining=0, reset_in=0.2, exhausted=True))
    assert quota.acquire() > 0
    time.sleep(0.3)
    assert quota.acquire() == 0


def test_a_spent_quota_with_no_reset_waits_for_the_top_of_the_hour(engine: Engine) -> None:
    quota = SharedQuota(engine, "jira:s:points", wall=lambda: 7200.0 + 3000.0)
    quota.observe(QuotaReading(remaining=0, exhausted=True))
    assert quota.acquire() == pytest.approx(600.0)


def test_shared_buckets_are_refused_on_sqlite(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        with pytest.raises(ConfigError) as err:
            shared_engine(store.engine)
        assert err.value.path == "runner.rate_buckets" and "PostgreSQL" in str(err.value)
    finally:
        store.close()


def test_a_database_out_of_reach_means_the_call_is_not_sent() -> None:
    engine = create_engine("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/none", isolation_level="AUTOCOMMIT")
    with pytest.raises(Unavailable) as err:
        PostgresBuckets(engine).take("k", 1.0, 1.0)
    assert err.value.not_sent and "s3cret" not in str(err.value)
    with pytest.raises(Unavailable):
        SharedQuota(engine, "jira:s:points").acquire()


def test_every_take_counts_itself_and_the_wait_it_promised(engine: Engine) -> None:
    from ml_connector.store.buckets import bucket_use

    buckets = PostgresBuckets(engine)
    waits = [buckets.take("ifs:t:c:requests", 2.0, 3.0).wait for _ in range(6)]
    buckets.take("jira:https://s:PUT /rest/api/3/issue/{id}", 50.0, 45.0)
    buckets.take("ifs:t:other:requests", 2.0, 3.0)  # another client id: not under the scope asked for
    use = bucket_use(engine, ["ifs:t:c", "jira:https://s"])
    assert [(scope, key, taken) for scope, key, taken, _ in use] == [
        ("ifs:t:c", "requests", 6),
        ("jira:https://s", "PUT /rest/api/3/issue/{id}", 1),
    ]
    assert use[0][3] == pytest.approx(sum(waits), abs=0.05) and use[1][3] == 0.0
    buckets.hold("ifs:t:c:burst:x", 30)
    assert buckets.take("ifs:t:c:requests", 2.0, 3.0, holds=("ifs:t:c:burst:x",)).held > 0
    assert bucket_use(engine, ["ifs:t:c"])[0][2] == 6  # a take refused by a hold takes and counts nothing
