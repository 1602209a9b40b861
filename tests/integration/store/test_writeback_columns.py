"""Schema 0004: write-back order marks and backoff columns; upgrading keeps existing rows usable (issue 15, 9)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import insert, inspect, select, text

from ml_connector.engine.requeue import requeue_failed
from ml_connector.store import PARKED, SYNCED, Store, utcnow
from ml_connector.store import schema as t
from ml_connector.store.db import alembic_config, create_db_engine


def test_upgrading_from_0003_keeps_rows_and_defaults_the_new_columns(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    now = utcnow()
    with engine.begin() as conn:
        assert "writeback_attempts" not in {c["name"] for c in inspect(conn).get_columns("records")}
        conn.execute(
            text(
                "INSERT INTO records (flow, ifs_key, state, jira_id, jira_status, written_status, attempts, "
                "created_at, updated_at) VALUES ('po', 'PO-1', 'synced', '10001', 'Done', 'Done', 0, :now, :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    store = Store.open(f"sqlite:///{tmp_path / 'old.sqlite'}")
    try:
        record = store.records.get("po", "PO-1")
        assert record is not None and record.writeback_attempts == 0 and record.writeback_next_attempt_at is None
        assert record.jira_updated is None and record.jira_changelog_id is None
        assert [r.ifs_key for r in store.records.unordered_writebacks("po")] == ["PO-1"]  # gets one repair read
        with store.engine.connect() as conn:
            assert conn.execute(select(t.records.c.writeback_attempts)).scalar_one() == 0
    finally:
        store.close()


def test_pending_writebacks_respect_the_backoff_and_replay_clears_it(store: Store) -> None:
    now = utcnow()
    with store.transaction() as tx:
        base = {
            "state": SYNCED,
            "jira_status": "Done",
            "written_status": "To Do",
            "created_at": now,
            "updated_at": now,
            "writeback_next_attempt_at": None,
        }
        tx.conn.execute(
            insert(t.records),
            [
                {**base, "flow": "po", "ifs_key": "due", "jira_id": "1", "writeback_next_attempt_at": now},
                {
                    **base,
                    "flow": "po",
                    "ifs_key": "later",
                    "jira_id": "2",
                    "writeback_next_attempt_at": now + timedelta(hours=1),
                },
                {**base, "flow": "po", "ifs_key": "new", "jira_id": "3"},
                {**base, "flow": "po", "ifs_key": "parked", "jira_id": "4", "state": PARKED},
            ],
        )
    assert [r.ifs_key for r in store.records.pending_writebacks("po", now=now)] == ["due", "new"]
    assert [r.ifs_key for r in store.records.pending_writebacks("po", now=now + timedelta(hours=2))] == [
        "due",
        "later",
        "new",
    ]
    later = store.records.get("po", "later")
    assert later is not None
    with store.transaction() as tx:
        tx.records.update(later.id, state=PARKED, writeback_attempts=5)
    requeue_failed(store, keys=["later"])
    replayed = store.records.get("po", "later")
    assert replayed is not None and replayed.writeback_attempts == 0 and replayed.writeback_next_attempt_at is None
    assert "later" in [r.ifs_key for r in store.records.pending_writebacks("po", now=now)]
