"""engine.requeue: replay's state policy over the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from ml_connector.engine.requeue import requeue_failed
from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, RETRY, SYNCED, Store, utcnow


def test_work_queue_and_replay(store: Store) -> None:
    with store.transaction() as tx:
        a = tx.records.insert("po", "A", state=PENDING_CREATE)
        b = tx.records.insert("po", "B", state=PARKED, jira_id="10001", last_error="bad priority")
        tx.records.insert("po", "C", state=SYNCED, jira_id="10002")
    assert [r.ifs_key for r in store.records.work_queue("po")] == ["A"]
    replayed = requeue_failed(store, flow="po")
    assert [r.ifs_key for r in replayed] == ["B"]
    b2 = store.records.get("po", "B")
    assert b2 is not None and b2.state == PENDING_UPDATE
    assert [r.ifs_key for r in store.records.work_queue("po")] == ["A", "B"]
    assert [e.event for e in store.audit.trail(b.id)] == ["replayed"]
    assert a.id != b.id


def test_a_replayed_record_forgets_its_attempts_backoff_and_draft(store: Store) -> None:
    later = utcnow() + timedelta(hours=1)
    failed = {"attempts": 4, "next_attempt_at": later, "writeback_attempts": 2, "writeback_next_attempt_at": later}
    with store.transaction() as tx:
        linked = tx.records.insert(
            "po", "L", state=RETRY, jira_id="1", draft={"summary": "x"}, draft_hash="h", **failed
        )
        unlinked = tx.records.insert("po", "U", state=PARKED, draft={"summary": "y"}, draft_hash="h", **failed)
    run_id = store.runs.start("po", "replay")
    before = requeue_failed(store, keys=["L", "U"], run_id=run_id)
    assert [(r.ifs_key, r.state) for r in before] == [("L", RETRY), ("U", PARKED)]  # as they were
    for record, state in ((linked, PENDING_UPDATE), (unlinked, PENDING_CREATE)):
        now = store.records.by_id(record.id)
        assert now is not None and now.state == state
        assert (now.attempts, now.writeback_attempts) == (0, 0)
        assert now.next_attempt_at is None and now.writeback_next_attempt_at is None
        assert now.draft is None and now.draft_hash is None
        trail = store.audit.trail(record.id)
        assert [(e.event, e.run_id) for e in trail] == [("replayed", run_id)]
    assert [e.message for e in store.audit.trail(unlinked.id)] == ["re-queued from parked by replay"]


def test_replay_picks_by_flow_key_state_and_time(store: Store) -> None:
    with store.transaction() as tx:
        tx.records.insert("po", "P1", state=PARKED, jira_id="1", jira_key="ABC-1")
        tx.records.insert("po", "R1", state=RETRY)
        tx.records.insert("wo", "W1", state=PARKED)
    assert requeue_failed(store, since=utcnow() + timedelta(minutes=1)) == []
    assert [r.ifs_key for r in requeue_failed(store, keys=["ABC-1"])] == ["P1"]  # a Jira key works too
    assert [r.ifs_key for r in requeue_failed(store, flow="po", states=(PARKED,))] == []
    assert [r.ifs_key for r in requeue_failed(store, flow="wo")] == ["W1"]
    assert store.records.count_by_state() == {PENDING_UPDATE: 1, RETRY: 1, PENDING_CREATE: 1}
