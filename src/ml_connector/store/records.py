"""Records: one row per IFS record and flow, with its Jira link, state and retry bookkeeping."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, func, insert, or_, select, update

from ml_connector.reasons import OTHER as OTHER_REASON
from ml_connector.store import schema as t
from ml_connector.store.db import SafeJson, safe_json
from ml_connector.store.rows import (
    FAILED_STATES,
    ORPHANED,
    PARKED,
    PENDING_CREATE,
    PENDING_UPDATE,
    RETRY,
    FailureGroup,
    RecordRow,
    utcnow,
)
from ml_connector.store.source import Repository, chunks, execute_many

_c = t.records.c


class RecordRepository(Repository):
    # -- reads -----------------------------------------------------------------------------------------------------

    def get(self, flow: str, ifs_key: str) -> RecordRow | None:
        found = self._rows(self._select().where(_c.flow == flow, _c.ifs_key == ifs_key))
        return found[0] if found else None

    def get_many(self, flow: str, keys: Iterable[str]) -> dict[str, RecordRow]:
        """The flow's records for ``keys`` (missing ones left out), by IFS key."""
        wanted = list(dict.fromkeys(keys))
        rows = self._chunked(wanted, lambda chunk: self._select().where(_c.flow == flow, _c.ifs_key.in_(chunk)))
        return {row.ifs_key: row for row in rows}

    def by_id(self, record_id: int) -> RecordRow | None:
        found = self._rows(self._select().where(_c.id == record_id))
        return found[0] if found else None

    def by_ids(self, ids: Sequence[int]) -> builtins.list[RecordRow]:
        """Records by primary key, in the order asked (missing ones left out)."""
        if not ids:
            return []
        found = {row.id: row for row in self._chunked(ids, lambda chunk: self._select().where(_c.id.in_(chunk)))}
        return [found[i] for i in ids if i in found]

    def by_jira_ids(self, jira_ids: Iterable[str]) -> dict[str, RecordRow]:
        wanted = list(dict.fromkeys(jira_ids))
        rows = self._chunked(wanted, lambda chunk: self._select().where(_c.jira_id.in_(chunk)))
        return {str(row.jira_id): row for row in rows}

    def find(self, text: str, *, limit: int = 50) -> builtins.list[RecordRow]:
        """Records whose IFS key or Jira key matches ``text`` exactly, then by prefix."""
        exact = or_(_c.ifs_key == text, _c.jira_key == text)
        query = self._select().where(or_(exact, _starts_with(text))).order_by(_c.flow, _c.ifs_key).limit(limit)
        return self._rows(query)

    def list(
        self,
        *,
        flow: str | None = None,
        state: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after_id: int | None = None,
    ) -> builtins.list[RecordRow]:
        query = self._select()
        if flow:
            query = query.where(_c.flow == flow)
        if state:
            query = query.where(_c.state == state)
        if search:
            query = query.where(_starts_with(search))
        if after_id is not None:
            query = query.where(_c.id > after_id)
        return self._rows(query.order_by(_c.id).limit(limit).offset(offset))

    def linked(self, flow: str) -> builtins.list[RecordRow]:
        """The flow's records that have a Jira issue."""
        return self._rows(self._select().where(_c.flow == flow, _c.jira_id.is_not(None)))

    def linked_projects(self, flow: str) -> set[str]:
        """Jira project keys the flow's issues live in now (from their keys; a moved issue counts in its new one)."""
        with self._source.reading() as conn:
            keys = conn.execute(
                select(_c.jira_key).where(self._mine(t.records), _c.flow == flow, _c.jira_key.is_not(None))
            )
            return {str(row[0]).rsplit("-", 1)[0] for row in keys}

    def count_by_state(self, flow: str | None = None) -> dict[str, int]:
        query = select(_c.state, func.count()).where(self._mine(t.records)).group_by(_c.state)
        if flow:
            query = query.where(_c.flow == flow)
        with self._source.reading() as conn:
            return {str(row[0]): int(row[1]) for row in conn.execute(query)}

    def count_by_flow_state(self) -> dict[tuple[str, str], int]:
        query = select(_c.flow, _c.state, func.count()).where(self._mine(t.records)).group_by(_c.flow, _c.state)
        with self._source.reading() as conn:
            return {(str(row[0]), str(row[1])): int(row[2]) for row in conn.execute(query)}

    def failure_groups(self, flow: str | None = None) -> builtins.list[FailureGroup]:
        """The failed queue grouped by flow and reason code, largest first, in one grouped query (the rows it
        returns grow with the distinct values, never with the records). A failure stored before reasons existed
        counts as ``other``."""
        reason = func.coalesce(_c.reason, OTHER_REASON)
        query = (
            select(_c.flow, reason, _c.reason_value, func.count())
            .where(self._mine(t.records), _c.state.in_(FAILED_STATES))
            .group_by(_c.flow, reason, _c.reason_value)
        )
        if flow:
            query = query.where(_c.flow == flow)
        values: dict[tuple[str, str], builtins.list[tuple[str | None, int]]] = {}
        with self._source.reading() as conn:
            for row in conn.execute(query):
                name, code, value, n = row[0], row[1], row[2], row[3]
                values.setdefault((str(name), str(code)), []).append((None if value is None else str(value), int(n)))
        groups = [
            FailureGroup(name, code, sum(n for _, n in found), tuple(sorted(found, key=lambda v: (-v[1], v[0] or ""))))
            for (name, code), found in values.items()
        ]
        return sorted(groups, key=lambda g: (g.flow, -g.count, g.reason))

    # -- queues ----------------------------------------------------------------------------------------------------

    def work_queue(self, flow: str, *, now: datetime | None = None, limit: int = 1000) -> builtins.list[RecordRow]:
        """Records with Jira work to do: pending, or due for a retry."""
        now = now or utcnow()
        return self._queue(
            limit,
            _c.flow == flow,
            or_(
                _c.state.in_((PENDING_CREATE, PENDING_UPDATE)),
                and_(_c.state == RETRY, _c.next_attempt_at <= now),
            ),
            or_(_c.next_attempt_at.is_(None), _c.next_attempt_at <= now),
        )

    def pending_writebacks(
        self, flow: str, *, now: datetime | None = None, limit: int = 5000
    ) -> builtins.list[RecordRow]:
        """Records whose Jira status is known but not yet in IFS (a write-back that failed and is due for a retry)."""
        now = now or utcnow()
        return self._queue(
            limit,
            _c.flow == flow,
            _c.jira_status.is_not(None),
            _c.state != PARKED,
            or_(_c.written_status.is_(None), _c.written_status != _c.jira_status),
            or_(_c.writeback_next_attempt_at.is_(None), _c.writeback_next_attempt_at <= now),
        )

    def unordered_writebacks(self, flow: str, *, limit: int = 500) -> builtins.list[RecordRow]:
        """Records written back before order marks existed (schema 0004): their Jira status needs one fresh read."""
        return self._queue(
            limit,
            _c.flow == flow,
            _c.written_status.is_not(None),
            _c.jira_updated.is_(None),
            _c.jira_id.is_not(None),
            _c.state.not_in((PARKED, ORPHANED)),
        )

    def in_states(
        self,
        states: Sequence[str],
        *,
        flow: str | None = None,
        keys: Sequence[str] = (),
        since: datetime | None = None,
    ) -> builtins.list[RecordRow]:
        """Records in ``states``, oldest first; narrowed to a flow, to IFS or Jira ``keys``, to changes ``since``."""
        query = self._select().where(_c.state.in_(tuple(states)))
        if flow:
            query = query.where(_c.flow == flow)
        if keys:
            query = query.where(or_(_c.ifs_key.in_(list(keys)), _c.jira_key.in_(list(keys))))
        if since is not None:
            query = query.where(_c.updated_at >= since)
        return self._rows(query.order_by(_c.id))

    # -- writes ----------------------------------------------------------------------------------------------------

    def insert(self, flow: str, ifs_key: str, **values: Any) -> RecordRow:
        now = utcnow()
        values.setdefault("attempts", 0)
        with self._source.writing() as conn:
            key = conn.execute(
                insert(t.records).values(
                    connection=self.connection, flow=flow, ifs_key=ifs_key, created_at=now, updated_at=now, **values
                )
            ).inserted_primary_key
            assert key is not None
            row = conn.execute(self._select().where(_c.id == key[0])).mappings().one()
        return RecordRow.from_row(row)

    def insert_many(self, flow: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, RecordRow]:
        """Insert many records (every row with the same value keys) in one executemany; returns key → the record as
        written, built from the values given and the ids the store assigned (no read of the rows back)."""
        if not rows:
            return {}
        now = utcnow()
        values = [
            {
                **_NEW,
                **_as_stored(row),
                "connection": self.connection,
                "flow": flow,
                "ifs_key": key,
                "created_at": now,
                "updated_at": now,
            }
            for key, row in rows
        ]
        ids: dict[str, int] = {}
        with self._source.writing() as conn:
            execute_many(conn, _INSERT, values)
            for chunk in chunks([key for key, _ in rows]):
                found = conn.execute(
                    select(_c.id, _c.ifs_key).where(self._mine(t.records), _c.flow == flow, _c.ifs_key.in_(chunk))
                )
                ids.update({str(row[1]): int(row[0]) for row in found})
        return {written["ifs_key"]: RecordRow(id=ids[written["ifs_key"]], **written) for written in values}

    def update(self, record_id: int, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self._source.writing() as conn:
            conn.execute(update(t.records).where(self._mine(t.records), _c.id == record_id).values(**values))

    def update_many(self, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """A different change per record (every row with the same keys) in one executemany."""
        if not rows:
            return
        names = tuple(sorted(rows[0][1]))
        now = utcnow()
        params = [
            {
                "p_id": record_id,
                "p_connection": self.connection,
                "p_updated_at": now,
                **{f"p_{k}": values[k] for k in names},
            }
            for record_id, values in rows
        ]
        with self._source.writing() as conn:
            execute_many(conn, _update_by_id(names), params)

    def set_many(self, record_ids: Sequence[int], **values: Any) -> None:
        """The same change on many records: one executemany of the update by id (on SQLite an ``IN (...)`` of 500
        ids cost more to render and bind in SQLAlchemy than the driver takes to run the 500 updates)."""
        self.update_many([(record_id, values) for record_id in record_ids])

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _select(self) -> Select[Any]:
        """Every read of records starts here: this connection's rows only."""
        return select(t.records).where(self._mine(t.records))

    def _rows(self, query: Select[Any]) -> builtins.list[RecordRow]:
        with self._source.reading() as conn:
            return [RecordRow.from_row(row) for row in conn.execute(query).mappings()]

    def _queue(self, limit: int, *conditions: ColumnElement[bool]) -> builtins.list[RecordRow]:
        """Records meeting every condition, oldest first, at most ``limit``."""
        return self._rows(self._select().where(*conditions).order_by(_c.id).limit(limit))

    def _chunked(
        self, values: Sequence[Any], query: Callable[[builtins.list[Any]], Select[Any]]
    ) -> builtins.list[RecordRow]:
        """``query(chunk)`` for each chunk of ``values``, rows of all chunks together (one connection)."""
        with self._source.reading() as conn:
            return [
                RecordRow.from_row(row) for chunk in chunks(values) for row in conn.execute(query(chunk)).mappings()
            ]


_INSERT = insert(t.records)
# Column defaults given as values: SQLAlchemy would fill them in per row (and the rows come back as written).
_NEW = {"attempts": 0, "writeback_attempts": 0}


@lru_cache(maxsize=64)
def _update_by_id(names: tuple[str, ...]) -> Update:
    """One statement object per set of columns (``execute_many`` keeps its compiled form per object)."""
    values: dict[str, Any] = {name: bindparam(f"p_{name}") for name in [*names, "updated_at"]}
    return (
        update(t.records).where(_c.connection == bindparam("p_connection"), _c.id == bindparam("p_id")).values(values)
    )


def _as_stored(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """``values`` as a read of the row would give them back: the draft as the JSON column holds it."""
    draft = values.get("draft")
    if draft is None or type(draft) is SafeJson:
        return values
    return {**values, "draft": safe_json(draft)}


def _starts_with(text: str) -> ColumnElement[bool]:
    return or_(_c.ifs_key.startswith(text, autoescape=True), _c.jira_key.startswith(text, autoescape=True))
