from __future__ import annotations

from datetime import timedelta

from sqlalchemy import inspect

from ml_connector.engine.requeue import requeue_failed
from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, SYNCED, AuditEvent, Store


def test_migrations_create_every_table(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    assert {"runs", "cursors", "records", "audit_events", "webhook_inbox", "webhook_subscriptions", "credentials",
            "leases", "flow_controls", "jira_users", "alembic_version"} <= names


def test_page_transaction_is_atomic(store: Store) -> None:
    run_id = store.runs.start("po", "outbound")
    try:
        with store.transaction(run_id) as tx:
            rec = tx.records.insert("po", "PO-1", state=PENDING_CREATE, draft_hash="h1")
            tx.audit.add(rec.id, AuditEvent("mapped"))
            tx.cursors.set("po", "2026-01-01T00:00:00Z")
            raise RuntimeError("crash mid-page")
    except RuntimeError:
        pass
    assert store.records.get("po", "PO-1") is None
    assert store.cursors.get("po") is None
    with store.transaction(run_id) as tx:
        rec = tx.records.insert("po", "PO-1", state=PENDING_CREATE, draft_hash="h1")
        tx.audit.add(rec.id, AuditEvent("mapped", detail={"Authorization": "Bearer abcdefghij", "summary": "x"}))
        tx.cursors.set("po", "2026-01-01T00:00:00Z")
    assert store.cursors.get("po") == "2026-01-01T00:00:00Z"
    trail = store.audit.trail(rec.id)
    assert [e.event for e in trail] == ["mapped"]
    assert trail[0].detail == {"Authorization": "[redacted]", "summary": "x"}
    assert trail[0].run_id == run_id


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


def test_inbox_deduplicates_on_delivery_id(store: Store) -> None:
    assert store.inbox.add("d-1", "jira:issue_updated", "10001", {"x": 1}) is True
    assert store.inbox.add("d-1", "jira:issue_updated", "10001", {"x": 1}) is False
    assert store.inbox.count() == 1


def test_lease_excludes_a_second_holder(store: Store) -> None:
    assert store.leases.acquire("scheduler", "host-a", timedelta(seconds=60))
    assert not store.leases.acquire("scheduler", "host-b", timedelta(seconds=60))
    assert store.leases.acquire("scheduler", "host-a", timedelta(seconds=60))  # renewal
    store.leases.release("scheduler", "host-a")
    assert store.leases.acquire("scheduler", "host-b", timedelta(seconds=60))
    holder = store.leases.holder("scheduler")
    assert holder is not None and holder[0] == "host-b"


def test_expired_lease_can_be_taken_over(store: Store) -> None:
    assert store.leases.acquire("scheduler", "host-a", timedelta(seconds=-1))
    assert store.leases.acquire("scheduler", "host-b", timedelta(seconds=60))
