"""``execute_many`` writes exactly what SQLAlchemy's own executemany writes (SQLite and PostgreSQL); on SQLite it
goes to the driver directly for the store's bulk writes, and takes SQLAlchemy's path for what it cannot do alone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, bindparam, insert, select, update

from ml_connector.store import Store
from ml_connector.store import schema as t
from ml_connector.store.db import JsonText, json_dumps
from ml_connector.store.source import _many_plan, _ManyPlan, execute_many

# (no NUL, no lone surrogate: PostgreSQL and the driver refuse them in text; making text storable is the
# repositories' job, before execute_many)
texts = st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20))
details = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=5), st.one_of(texts, st.integers(), st.floats(allow_nan=False)), max_size=3),
)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


_keys = itertools.count()


def _audit_rows(record_id: int, drawn: list[tuple[str | None, Any, datetime]]) -> list[dict[str, Any]]:
    return [
        {
            "record_id": record_id,
            "run_id": None if n % 2 else n,
            "at": at,
            "event": "mapped",
            "outcome": "ok",
            "message": message,
            "detail": JsonText(json_dumps(detail, sort_keys=True)) if n % 3 == 0 and detail is not None else detail,
            "digest": None,
        }
        for n, (message, detail, at) in enumerate(drawn)
    ]


def _table(conn: Connection, record_id: int) -> list[tuple[Any, ...]]:
    audit = t.audit_events.c
    query = select(audit.run_id, audit.at, audit.message, audit.detail).where(audit.record_id == record_id)
    return [tuple(row) for row in conn.execute(query.order_by(audit.id))]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(drawn=st.lists(st.tuples(texts, details, moments), min_size=1, max_size=6))
def test_the_rows_written_are_those_sqlalchemy_writes(store: Store, drawn: list[tuple[Any, Any, datetime]]) -> None:
    with store.transaction() as tx:
        ours, theirs = (tx.records.insert("po", f"K{next(_keys)}", state="x") for _ in range(2))
    rows_ours, rows_theirs = _audit_rows(ours.id, drawn), _audit_rows(theirs.id, drawn)
    with store.engine.begin() as conn:
        execute_many(conn, insert(t.audit_events), rows_ours)
        conn.execute(insert(t.audit_events), rows_theirs)
    with store.engine.connect() as conn:
        assert _table(conn, ours.id) == _table(conn, theirs.id)


def test_updates_by_id_match_too_and_nothing_runs_for_no_rows(store: Store) -> None:
    with store.transaction() as tx:
        written = tx.records.insert_many("po", [(f"K{n}", {"state": "pending_create"}) for n in range(4)])
    ids = [r.id for r in written.values()]
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    statement = (
        update(t.records)
        .where(t.records.c.id == bindparam("p_id"))
        .values(state=bindparam("p_state"), next_attempt_at=bindparam("p_at"))
    )
    rows = [{"p_id": i, "p_state": f"s{i}", "p_at": at + timedelta(days=i) if i % 2 else None} for i in ids]
    with store.engine.begin() as conn:
        execute_many(conn, statement, rows)
        execute_many(conn, statement, [])
    found = {r.id: (r.state, r.next_attempt_at) for r in store.records.by_ids(ids)}
    assert found == {i: (f"s{i}", at + timedelta(days=i) if i % 2 else None) for i in ids}


def test_sqlite_goes_to_the_driver_unless_the_statement_needs_sqlalchemy(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    dialect = store.engine.dialect
    keys = ("record_id", "run_id", "at", "event", "outcome", "message", "detail", "digest")
    statement = insert(t.audit_events)
    assert _many_plan(dialect, statement, keys) is not None
    # a Python-side column default (writeback_attempts) is filled in per row by SQLAlchemy only
    assert _many_plan(dialect, insert(t.records), ("flow", "ifs_key", "state", "created_at", "updated_at")) is None
    # a key the statement does not use: SQLAlchemy decides what that means
    assert _many_plan(dialect, statement, (*keys, "stray")) is None
    with store.transaction() as tx:
        record = tx.records.insert("po", "K", state="x")
    stamp = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    with store.engine.begin() as conn:  # the fallback path still writes (defaults filled in)
        execute_many(
            conn,
            insert(t.records),
            [{"flow": "po", "ifs_key": "D", "state": "x", "created_at": stamp, "updated_at": stamp}],
        )
    defaulted = store.records.get("po", "D")
    assert defaulted is not None and defaulted.writeback_attempts == 0 and defaulted.created_at == stamp
    assert record.id != defaulted.id
    store.close()


def test_a_processor_runs_once_per_run_of_one_object_down_a_column() -> None:
    calls: list[Any] = []

    def stamp(value: Any) -> Any:
        calls.append(value)
        return None if value is None else value.isoformat()

    plan = _ManyPlan("INSERT ...", ["n", "at"], {"at": stamp, "n": None})
    now, later = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    moments = [now, now, None, None, later, now]
    params = plan.rows([{"n": n, "at": at} for n, at in enumerate(moments)])
    assert calls == [now, None, later, now]  # the same object in a row after row: processed once
    assert params == [(n, stamp(at)) for n, at in enumerate(moments)]
    assert all(type(p) is tuple for p in params)  # what the driver's executemany takes
    assert _ManyPlan("SELECT ?", ["n"], {}).rows([{"n": 1}, {"n": 2}]) == [(1,), (2,)]
