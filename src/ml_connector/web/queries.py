"""Dashboard reads: keyset-paginated, index-backed queries whose cost does not grow with the number of records.

Every list is ordered by ``id`` and continues ``after``/``before`` an id, so page N costs the same as page 1.
Indexes used (store/schema.py, migration 0002): ``(state, id)``, ``(flow, id)``, ``(flow, state)`` (its implicit
rowid/id suffix on SQLite), ``ifs_key`` and ``jira_key``, and ``audit_events(record_id, id)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select

from ml_connector.reasons import OTHER
from ml_connector.store import FAILED_STATES, AuditRow, RecordRow, RunRow, Store
from ml_connector.store import schema as t

# Sorts after every real character in a binary (code point) collation: the upper bound of a prefix range.
_PREFIX_END = "\U0010ffff"


@dataclass
class Page:
    rows: list[RecordRow]
    next_after: int | None  # pass as ``after`` for the next page; None on the last page


def _prefix(column: Any, text: str, dialect: str) -> ColumnElement[bool]:
    """``column`` starts with ``text``; on SQLite as a range so the (binary-collated) index serves it."""
    if dialect == "sqlite":
        return and_(column >= text, column < text + _PREFIX_END)
    result: ColumnElement[bool] = column.startswith(text, autoescape=True)
    return result


def _search_clause(text: str, dialect: str) -> ColumnElement[bool]:
    return or_(
        t.records.c.ifs_key == text,
        t.records.c.jira_key == text,
        _prefix(t.records.c.ifs_key, text, dialect),
        _prefix(t.records.c.jira_key, text, dialect),
    )


def list_records(
    store: Store,
    *,
    flow: str | None = None,
    states: tuple[str, ...] = (),
    search: str | None = None,
    after: int | None = None,
    limit: int = 50,
    reason: str | None = None,
) -> Page:
    query: Select[Any] = select(t.records).where(t.records.c.connection == store.connection)
    if flow:
        query = query.where(t.records.c.flow == flow)
    if reason:
        query = query.where(_reason_clause(reason))
    if len(states) == 1:
        query = query.where(t.records.c.state == states[0])
    elif states:
        query = query.where(t.records.c.state.in_(states))
    if search:
        query = query.where(_search_clause(search, store.dialect))
    if after is not None:
        query = query.where(t.records.c.id > after)
    query = query.order_by(t.records.c.id).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = [RecordRow.from_row(r) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


def _reason_clause(reason: str) -> ColumnElement[bool]:
    """Records whose reason code is ``reason``; a failure stored before codes existed counts as ``other``."""
    if reason == OTHER:
        return or_(t.records.c.reason == reason, t.records.c.reason.is_(None))
    return t.records.c.reason == reason


def failed_queue(
    store: Store, *, flow: str | None = None, after: int | None = None, limit: int = 50, reason: str | None = None
) -> Page:
    """Parked and retrying records (of one ``reason`` if given); one indexed range per state, merged, so no scan of
    the synced majority."""
    pages = [
        list_records(store, flow=flow, states=(state,), after=after, limit=limit, reason=reason)
        for state in FAILED_STATES
    ]
    merged = sorted((r for p in pages for r in p.rows), key=lambda r: r.id)
    more = len(merged) > limit or any(p.next_after is not None for p in pages)
    merged = merged[:limit]
    return Page(merged, merged[-1].id if more and merged else None)


def record_with_trail(store: Store, record_id: int, *, limit: int = 1000) -> tuple[RecordRow | None, list[AuditRow]]:
    record = store.records.by_id(record_id)
    if record is None:
        return None, []
    return record, store.audit.trail(record_id, limit=limit)


def runs_page(store: Store, *, flow: str | None = None, before: int | None = None, limit: int = 50) -> list[RunRow]:
    query: Select[Any] = select(t.runs).where(t.runs.c.connection == store.connection)
    if flow:
        query = query.where(t.runs.c.flow == flow)
    if before is not None:
        query = query.where(t.runs.c.id < before)
    query = query.order_by(t.runs.c.id.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [RunRow.from_row(r) for r in conn.execute(query).mappings()]


def inbox_pending(store: Store) -> int:
    return store.inbox.count("pending")


def database_ok(store: Store) -> str | None:
    """None when the database answers; otherwise the reason (never the URL, which may hold a password)."""
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}"
    return None
