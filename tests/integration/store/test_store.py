"""The transaction object: repositories on one connection commit or roll back together (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import Text, select

from ml_connector.store import PENDING_CREATE, SYNCED, AuditEvent, KnownTexts, Store, audit, schema
from ml_connector.store.db import json_dumps


def test_page_transaction_is_atomic(store: Store) -> None:
    run_id = store.runs.start("po", "outbound")
    with pytest.raises(RuntimeError), store.transaction(run_id) as tx:
        rec = tx.records.insert("po", "PO-1", state=PENDING_CREATE, draft_hash="h1")
        tx.audit.add(rec.id, AuditEvent("mapped"))
        tx.cursors.set("po", "2026-01-01T00:00:00Z")
        raise RuntimeError("crash mid-page")
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


def test_a_write_of_every_repository_rolls_back_with_the_transaction(store: Store) -> None:
    with store.transaction() as tx:
        kept = tx.records.insert("po", "KEPT", state=PENDING_CREATE)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.records.update(kept.id, state=SYNCED, jira_id="10001")
        tx.records.set_many([kept.id], attempts=3)
        tx.records.insert_many("po", [("NEW", {"state": PENDING_CREATE})])
        tx.audit.add_many([(kept.id, AuditEvent("created"))])
        tx.cursors.set("po", "2026-01-01T00:00:00Z")
        raise RuntimeError("rolled back")
    after = store.records.get("po", "KEPT")
    assert after is not None and (after.state, after.jira_id, after.attempts) == (PENDING_CREATE, None, 0)
    assert store.records.get("po", "NEW") is None
    assert store.audit.trail(kept.id) == []
    assert store.cursors.get("po") is None


def test_a_read_outside_the_transaction_sees_committed_data_only(store: Store) -> None:
    with store.transaction() as tx:
        record = tx.records.insert("po", "PO-1", state=PENDING_CREATE)
        tx.cursors.set("po", "c1")
        inside = tx.records.get("po", "PO-1")
        assert inside is not None and inside.id == record.id  # the transaction reads its own writes
        assert tx.cursors.get("po") == "c1"
        assert store.records.get("po", "PO-1") is None  # another connection does not, yet
        assert store.cursors.get("po") is None
        assert store.records.count_by_state("po") == {}
    assert store.records.get("po", "PO-1") == record
    assert store.cursors.get("po") == "c1"


def test_audit_rows_and_cursors_carry_the_transactions_run(store: Store) -> None:
    run_id = store.runs.start("po", "outbound")
    with store.transaction(run_id) as tx:
        record = tx.records.insert("po", "PO-1", state=PENDING_CREATE)
        tx.audit.add(record.id, AuditEvent("mapped"))
    store.audit.add(record.id, AuditEvent("noted"))  # outside a transaction: no run
    assert [(e.event, e.run_id) for e in store.audit.trail(record.id)] == [("mapped", run_id), ("noted", None)]


def test_an_audit_digest_is_the_sha256_of_the_stored_redacted_detail(store: Store) -> None:
    detail = {"b": [1, "x"], "a": {"token": "abcdefghij", "note": "Bearer abcdefghij"}, "draft": {"summary": "s"}}
    with store.transaction() as tx:
        record = tx.records.insert("po", "PO-D", state=PENDING_CREATE)
        tx.audit.add(record.id, AuditEvent("mapped", detail=detail))
    (event,) = store.audit.trail(record.id)
    redacted = {"a": {"note": "Bearer [redacted]", "token": "[redacted]"}, "b": [1, "x"], "draft": {"summary": "s"}}
    assert event.detail == redacted
    # the digest's definition: SHA-256 of the redacted detail encoded with sorted keys, which is the stored text
    assert event.digest == hashlib.sha256(json.dumps(redacted, sort_keys=True).encode()).hexdigest()
    with store.engine.connect() as conn:
        column = schema.audit_events.c.detail
        stored = conn.execute(select(column.cast(Text)).where(schema.audit_events.c.id == event.id)).scalar()
    assert stored is not None and hashlib.sha256(stored.encode()).hexdigest() == event.digest


def _stored(store: Store, record_id: int) -> list[tuple[str | None, str | None]]:
    column = schema.audit_events.c
    with store.engine.connect() as conn:
        query = select(column.detail.cast(Text), column.digest).where(column.record_id == record_id)
        return [(row[0], row[1]) for row in conn.execute(query.order_by(column.id))]


def test_a_detail_with_known_texts_is_stored_as_if_encoded_whole_and_redaction_still_applies(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = {"summary": "s", "custom_fields": {"b": "2", "a": "1"}, "labels": ["x"]}
    source = {"OrderNo": "PO-1", "Amount": 1.5, "Note": "Bearer abcdefghij"}  # redacted: the source is not known
    secret_draft = {"summary": "token=abcdefghijk"}  # redacted: its known text no longer stands for it
    details = [
        {"draft": draft, "source": source},
        {"source": source, "draft": secret_draft},
        {"draft": draft, "zeta": None, "alpha": [1, "ü"]},
    ]
    known = (
        {"draft": json.dumps(draft, sort_keys=True)},
        {"draft": json.dumps(secret_draft, sort_keys=True)},
        {"draft": json.dumps(draft, sort_keys=True)},
    )
    with store.transaction() as tx:
        plain, composed = (tx.records.insert("po", key, state=PENDING_CREATE) for key in ("PO-P", "PO-K"))
        for detail, texts in zip(details, known, strict=True):
            tx.audit.add(plain.id, AuditEvent("mapped", detail=detail))
            tx.audit.add(composed.id, AuditEvent("mapped", detail=KnownTexts(detail, texts)))
    assert _stored(store, composed.id) == _stored(store, plain.id)
    encoded: list[Any] = []
    monkeypatch.setattr(audit, "json_dumps", lambda value, **kw: encoded.append(value) or json_dumps(value, **kw))
    with store.transaction() as tx:
        tx.audit.add(composed.id, AuditEvent("mapped", detail=KnownTexts(details[0], known[0])))
    assert [set(value) for value in encoded] == [set(source)]  # the draft's known text is taken as it is
    events = store.audit.trail(composed.id)
    assert events[1].detail is not None and events[1].detail["draft"] == {"summary": "token=[redacted]"}
    for (text, digest), event in zip(_stored(store, composed.id), events, strict=True):
        assert text == json.dumps(event.detail, sort_keys=True) and digest == hashlib.sha256(text.encode()).hexdigest()
