"""The state store: runs, cursors, records, the append-only audit trail, webhook inbox, leases.

One ``Store`` per process. Work that must be atomic (a page: record states, audit events and the cursor) goes through
``Store.transaction()``, which yields a ``Tx`` bound to one database transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ml_connector.http.redact import redact
from ml_connector.store import schema as t
from ml_connector.store.db import clean_text, create_db_engine, json_dumps, migrate


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# Record states
PENDING_CREATE = "pending_create"
PENDING_UPDATE = "pending_update"
SYNCED = "synced"
RETRY = "retry"
PARKED = "parked"
ORPHANED = "orphaned"
RECORD_STATES = (PENDING_CREATE, PENDING_UPDATE, SYNCED, RETRY, PARKED, ORPHANED)


@dataclass
class RecordRow:
    id: int
    flow: str
    ifs_key: str
    state: str
    source_hash: str | None = None
    draft_hash: str | None = None
    source_ts: str | None = None
    draft: dict[str, Any] | None = None
    jira_id: str | None = None
    jira_key: str | None = None
    jira_status: str | None = None
    jira_status_category: str | None = None
    written_status: str | None = None
    jira_updated: datetime | None = None
    jira_changelog_id: int | None = None
    create_attempted_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error_class: str | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    writeback_attempts: int = 0
    writeback_next_attempt_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RecordRow:
        values = dict(row)
        for name in (
            "create_attempted_at",
            "next_attempt_at",
            "created_at",
            "updated_at",
            "jira_updated",
            "writeback_next_attempt_at",
        ):
            values[name] = _aware(values.get(name))
        return cls(**values)


@dataclass
class AuditEvent:
    event: str
    outcome: str = "ok"
    message: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass
class AuditRow:
    id: int
    record_id: int
    run_id: int | None
    at: datetime
    event: str
    outcome: str
    message: str | None
    detail: dict[str, Any] | None
    digest: str | None


@dataclass
class RunRow:
    id: int
    flow: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def _digest(payload: Any) -> str:
    return hashlib.sha256(json_dumps(payload, sort_keys=True).encode()).hexdigest()


class Tx:
    """Operations inside one transaction."""

    def __init__(self, conn: Connection, run_id: int | None) -> None:
        self.conn = conn
        self.run_id = run_id

    def get_records(self, flow: str, keys: Iterable[str]) -> dict[str, RecordRow]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, RecordRow] = {}
        for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                select(t.records).where(t.records.c.flow == flow, t.records.c.ifs_key.in_(chunk))
            ).mappings()
            for row in rows:
                found[row["ifs_key"]] = RecordRow.from_row(row)
        return found

    def insert_record(self, flow: str, ifs_key: str, **values: Any) -> RecordRow:
        now = utcnow()
        values.setdefault("attempts", 0)
        record_id = self.conn.execute(
            insert(t.records).values(flow=flow, ifs_key=ifs_key, created_at=now, updated_at=now, **values)
        ).inserted_primary_key
        assert record_id is not None
        row = self.conn.execute(select(t.records).where(t.records.c.id == record_id[0])).mappings().one()
        return RecordRow.from_row(row)

    def insert_records(self, flow: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
        """Insert many records (every row with the same value keys) in one executemany; returns key → id."""
        if not rows:
            return {}
        now = utcnow()
        self.conn.execute(
            insert(t.records),
            [
                {"attempts": 0, **values, "flow": flow, "ifs_key": key, "created_at": now, "updated_at": now}
                for key, values in rows
            ],
        )
        ids: dict[str, int] = {}
        keys = [key for key, _ in rows]
        for start in range(0, len(keys), 500):
            found = self.conn.execute(
                select(t.records.c.id, t.records.c.ifs_key).where(
                    t.records.c.flow == flow, t.records.c.ifs_key.in_(keys[start : start + 500])
                )
            )
            ids.update({str(row[1]): int(row[0]) for row in found})
        return ids

    def set_records(self, record_ids: Sequence[int], **values: Any) -> None:
        """The same change on many records, one statement per 500 ids."""
        values["updated_at"] = utcnow()
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start : start + 500])
            self.conn.execute(update(t.records).where(t.records.c.id.in_(chunk)).values(**values))

    def update_records(self, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """A different change per record (every row with the same keys) in one executemany."""
        if not rows:
            return
        names = sorted(rows[0][1])
        statement = (
            update(t.records)
            .where(t.records.c.id == bindparam("p_id"))
            .values({name: bindparam(f"p_{name}") for name in [*names, "updated_at"]})
        )
        now = utcnow()
        self.conn.execute(
            statement,
            [
                {"p_id": record_id, "p_updated_at": now, **{f"p_{k}": values[k] for k in names}}
                for record_id, values in rows
            ],
        )

    def update_record(self, record_id: int, **values: Any) -> None:
        values["updated_at"] = utcnow()
        self.conn.execute(update(t.records).where(t.records.c.id == record_id).values(**values))

    def audit(self, record_id: int, event: AuditEvent) -> None:
        self.audit_many([(record_id, event)])

    def audit_many(self, rows: Sequence[tuple[int, AuditEvent]]) -> None:
        if not rows:
            return
        now = utcnow()
        values = []
        for record_id, event in rows:
            detail = redact(dict(event.detail)) if event.detail is not None else None
            values.append(
                {
                    "record_id": record_id,
                    "run_id": self.run_id,
                    "at": now,
                    "event": event.event,
                    "outcome": event.outcome,
                    "message": clean_text(redact(event.message)) if event.message else None,
                    "detail": detail,
                    "digest": _digest(detail) if detail is not None else None,
                }
            )
        self.conn.execute(insert(t.audit_events), values)

    def get_cursor(self, name: str) -> str | None:
        value: str | None = self.conn.execute(select(t.cursors.c.value).where(t.cursors.c.name == name)).scalar()
        return value

    def set_cursor(self, name: str, value: str | None) -> None:
        now = utcnow()
        done = self.conn.execute(
            update(t.cursors).where(t.cursors.c.name == name).values(value=value, updated_at=now, run_id=self.run_id)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(t.cursors).values(name=name, value=value, updated_at=now, run_id=self.run_id))


class Store:
    """Durable state; safe to share between threads (each call takes its own connection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        engine = create_db_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, run_id: int | None = None) -> Iterator[Tx]:
        with self.engine.begin() as conn:
            yield Tx(conn, run_id)

    # -- runs ------------------------------------------------------------------------------------------------------

    def start_run(self, flow: str, kind: str, *, dry_run: bool = False) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(t.runs).values(
                    flow=flow, kind=kind, started_at=utcnow(), status="running", dry_run=dry_run, counts={}
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_run(self, run_id: int, status: str, counts: Mapping[str, int], error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(
                    finished_at=utcnow(),
                    status=status,
                    counts=dict(counts),
                    error=clean_text(redact(error)) if error else None,
                )
            )

    def recent_runs(self, *, flow: str | None = None, limit: int = 50) -> list[RunRow]:
        query = select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)
        if flow:
            query = query.where(t.runs.c.flow == flow)
        with self.engine.connect() as conn:
            return [self._run(row) for row in conn.execute(query).mappings()]

    def last_run(self, flow: str, *, kind: str | None = None, succeeded: bool = False) -> RunRow | None:
        query = select(t.runs).where(t.runs.c.flow == flow, t.runs.c.dry_run.is_(False))
        if kind:
            query = query.where(t.runs.c.kind == kind)
        if succeeded:
            query = query.where(t.runs.c.status.in_(("succeeded", "partial")))
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(t.runs.c.id.desc()).limit(1)).mappings().first()
        return self._run(row) if row else None

    @staticmethod
    def _run(row: Mapping[Any, Any]) -> RunRow:
        values = dict(row)
        values["started_at"] = _aware(values["started_at"])
        values["finished_at"] = _aware(values["finished_at"])
        values["counts"] = values.get("counts") or {}
        return RunRow(**values)

    # -- cursors ---------------------------------------------------------------------------------------------------

    def get_cursor(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(t.cursors.c.value).where(t.cursors.c.name == name)).scalar_one_or_none()
        return value

    def set_cursor(self, name: str, value: str | None) -> None:
        with self.transaction() as tx:
            tx.set_cursor(name, value)

    # -- records ---------------------------------------------------------------------------------------------------

    def get_record(self, flow: str, ifs_key: str) -> RecordRow | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(t.records).where(t.records.c.flow == flow, t.records.c.ifs_key == ifs_key))
                .mappings()
                .first()
            )
        return RecordRow.from_row(row) if row else None

    def get_record_by_id(self, record_id: int) -> RecordRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.records).where(t.records.c.id == record_id)).mappings().first()
        return RecordRow.from_row(row) if row else None

    def get_records_by_ids(self, ids: Sequence[int]) -> list[RecordRow]:
        """Records by primary key, in the order asked (missing ones left out)."""
        found: dict[int, RecordRow] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(select(t.records).where(t.records.c.id.in_(list(ids[start : start + 500]))))
                for row in rows.mappings():
                    found[int(row["id"])] = RecordRow.from_row(row)
        return [found[i] for i in ids if i in found]

    def find_records(self, text: str, *, limit: int = 50) -> list[RecordRow]:
        """Records whose IFS key or Jira key matches ``text`` exactly, then by prefix."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.records)
                .where(
                    or_(
                        t.records.c.ifs_key == text,
                        t.records.c.jira_key == text,
                        t.records.c.ifs_key.startswith(text, autoescape=True),
                        t.records.c.jira_key.startswith(text, autoescape=True),
                    )
                )
                .order_by(t.records.c.flow, t.records.c.ifs_key)
                .limit(limit)
            ).mappings()
            return [RecordRow.from_row(r) for r in rows]

    def records_by_jira_ids(self, jira_ids: Iterable[str]) -> dict[str, RecordRow]:
        wanted = list(dict.fromkeys(jira_ids))
        found: dict[str, RecordRow] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(t.records).where(t.records.c.jira_id.in_(wanted[start : start + 500]))
                ).mappings()
                for row in rows:
                    found[row["jira_id"]] = RecordRow.from_row(row)
        return found

    def list_records(
        self,
        *,
        flow: str | None = None,
        state: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after_id: int | None = None,
    ) -> list[RecordRow]:
        query = select(t.records)
        if flow:
            query = query.where(t.records.c.flow == flow)
        if state:
            query = query.where(t.records.c.state == state)
        if search:
            query = query.where(
                or_(
                    t.records.c.ifs_key.startswith(search, autoescape=True),
                    t.records.c.jira_key.startswith(search, autoescape=True),
                )
            )
        if after_id is not None:
            query = query.where(t.records.c.id > after_id)
        query = query.order_by(t.records.c.id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [RecordRow.from_row(r) for r in conn.execute(query).mappings()]

    def work_queue(self, flow: str, *, now: datetime | None = None, limit: int = 1000) -> list[RecordRow]:
        """Records with Jira work to do: pending, or due for a retry."""
        now = now or utcnow()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.records)
                .where(
                    t.records.c.flow == flow,
                    or_(
                        t.records.c.state.in_((PENDING_CREATE, PENDING_UPDATE)),
                        and_(t.records.c.state == RETRY, t.records.c.next_attempt_at <= now),
                    ),
                    or_(t.records.c.next_attempt_at.is_(None), t.records.c.next_attempt_at <= now),
                )
                .order_by(t.records.c.id)
                .limit(limit)
            ).mappings()
            return [RecordRow.from_row(r) for r in rows]

    def count_by_state(self, flow: str | None = None) -> dict[str, int]:
        query = select(t.records.c.state, func.count()).group_by(t.records.c.state)
        if flow:
            query = query.where(t.records.c.flow == flow)
        with self.engine.connect() as conn:
            return {str(row[0]): int(row[1]) for row in conn.execute(query)}

    def count_by_flow_state(self) -> dict[tuple[str, str], int]:
        query = select(t.records.c.flow, t.records.c.state, func.count()).group_by(t.records.c.flow, t.records.c.state)
        with self.engine.connect() as conn:
            return {(str(row[0]), str(row[1])): int(row[2]) for row in conn.execute(query)}

    def pending_writebacks(self, flow: str, *, now: datetime | None = None, limit: int = 5000) -> list[RecordRow]:
        """Records whose Jira status is known but not yet in IFS (a write-back that failed and is due for a retry)."""
        now = now or utcnow()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.records)
                .where(
                    t.records.c.flow == flow,
                    t.records.c.jira_status.is_not(None),
                    t.records.c.state != PARKED,
                    or_(t.records.c.written_status.is_(None), t.records.c.written_status != t.records.c.jira_status),
                    or_(
                        t.records.c.writeback_next_attempt_at.is_(None),
                        t.records.c.writeback_next_attempt_at <= now,
                    ),
                )
                .order_by(t.records.c.id)
                .limit(limit)
            ).mappings()
            return [RecordRow.from_row(r) for r in rows]

    def unordered_writebacks(self, flow: str, *, limit: int = 500) -> list[RecordRow]:
        """Records written back before order marks existed (schema 0004): their Jira status needs one fresh read."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.records)
                .where(
                    t.records.c.flow == flow,
                    t.records.c.written_status.is_not(None),
                    t.records.c.jira_updated.is_(None),
                    t.records.c.jira_id.is_not(None),
                    t.records.c.state.not_in((PARKED, ORPHANED)),
                )
                .order_by(t.records.c.id)
                .limit(limit)
            ).mappings()
            return [RecordRow.from_row(r) for r in rows]

    def linked_projects(self, flow: str) -> set[str]:
        """Jira project keys the flow's issues live in now (from their keys; a moved issue counts in its new one)."""
        with self.engine.connect() as conn:
            keys = conn.execute(
                select(t.records.c.jira_key).where(t.records.c.flow == flow, t.records.c.jira_key.is_not(None))
            )
            return {str(row[0]).rsplit("-", 1)[0] for row in keys}

    def linked_records(self, flow: str) -> list[RecordRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.records).where(t.records.c.flow == flow, t.records.c.jira_id.is_not(None))
            ).mappings()
            return [RecordRow.from_row(r) for r in rows]

    def requeue(
        self,
        *,
        flow: str | None = None,
        keys: Sequence[str] = (),
        states: Sequence[str] = (PARKED, RETRY),
        since: datetime | None = None,
        run_id: int | None = None,
    ) -> list[RecordRow]:
        """Put failed records back in the work queue (replay); each gets a ``replayed`` audit event."""
        query = select(t.records).where(t.records.c.state.in_(tuple(states)))
        if flow:
            query = query.where(t.records.c.flow == flow)
        if keys:
            query = query.where(or_(t.records.c.ifs_key.in_(list(keys)), t.records.c.jira_key.in_(list(keys))))
        if since is not None:
            query = query.where(t.records.c.updated_at >= since)
        with self.transaction(run_id) as tx:
            rows = [RecordRow.from_row(r) for r in tx.conn.execute(query).mappings()]
            for row in rows:
                target = PENDING_UPDATE if row.jira_id else PENDING_CREATE
                # draft=None: the record is mapped again from fresh IFS data, so a fixed config takes effect.
                tx.update_record(
                    row.id,
                    state=target,
                    attempts=0,
                    next_attempt_at=None,
                    writeback_attempts=0,
                    writeback_next_attempt_at=None,
                    draft=None,
                    draft_hash=None,
                )
                tx.audit(row.id, AuditEvent("replayed", message=f"re-queued from {row.state} by replay"))
        return rows

    # -- audit -----------------------------------------------------------------------------------------------------

    def audit_trail(self, record_id: int) -> list[AuditRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.audit_events).where(t.audit_events.c.record_id == record_id).order_by(t.audit_events.c.id)
            ).mappings()
            return [AuditRow(**{**dict(r), "at": _aware(r["at"])}) for r in rows]

    # -- users cache -----------------------------------------------------------------------------------------------

    def cached_users(self, *, max_age: timedelta) -> dict[str, str | None]:
        cutoff = utcnow() - max_age
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.jira_users)).mappings()
            return {r["email"]: r["account_id"] for r in rows if (_aware(r["resolved_at"]) or cutoff) >= cutoff}

    def cache_user(self, email: str, account_id: str | None) -> None:
        email = email.lower()
        with self.engine.begin() as conn:
            conn.execute(delete(t.jira_users).where(t.jira_users.c.email == email))
            conn.execute(insert(t.jira_users).values(email=email, account_id=account_id, resolved_at=utcnow()))

    # -- webhook inbox ---------------------------------------------------------------------------------------------

    def add_inbox_event(self, delivery_id: str, event: str, issue_id: str | None, payload: Mapping[str, Any]) -> bool:
        """Store a delivery; False when this delivery id was already stored (a duplicate)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(t.webhook_inbox).values(
                        delivery_id=delivery_id,
                        received_at=utcnow(),
                        event=event,
                        issue_id=issue_id,
                        payload=dict(payload),
                        status="pending",
                    )
                )
        except IntegrityError:
            return False
        return True

    def pending_inbox(self, *, limit: int = 500) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.webhook_inbox)
                .where(t.webhook_inbox.c.status == "pending")
                .order_by(t.webhook_inbox.c.id)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def mark_inbox(self, ids: Sequence[int], status: str, error: str | None = None) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(t.webhook_inbox)
                .where(t.webhook_inbox.c.id.in_(list(ids)))
                .values(status=status, processed_at=utcnow(), error=error)
            )

    def inbox_count(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(t.webhook_inbox)
        if status:
            query = query.where(t.webhook_inbox.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- leases ----------------------------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew lease ``name`` for ``holder``; False while someone else holds an unexpired lease."""
        now = utcnow()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"lease:{name}",))
            row = conn.execute(select(t.leases).where(t.leases.c.name == name)).mappings().first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(t.leases).values(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
                        )
                except IntegrityError:
                    return False
                return True
            expires = _aware(row["expires_at"])
            assert expires is not None
            if row["holder"] != holder and expires > now:
                return False
            taken = conn.execute(
                update(t.leases)
                .where(
                    t.leases.c.name == name,
                    t.leases.c.holder == row["holder"],
                    t.leases.c.expires_at == row["expires_at"],
                )
                .values(
                    holder=holder,
                    acquired_at=now if row["holder"] != holder else row["acquired_at"],
                    expires_at=now + ttl,
                )
            )
            return taken.rowcount == 1

    def release_lease(self, name: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.leases).where(t.leases.c.name == name, t.leases.c.holder == holder))

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.leases).where(t.leases.c.name == name)).mappings().first()
        if row is None:
            return None
        expires = _aware(row["expires_at"])
        assert expires is not None
        return (row["holder"], expires) if expires > utcnow() else None

    # -- flow controls (dashboard) ---------------------------------------------------------------------------------

    def flow_control(self, flow: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.flow_controls).where(t.flow_controls.c.flow == flow)).mappings().first()
        return dict(row) if row else {"flow": flow, "paused": False, "sync_requested_at": None}

    def set_flow_control(self, flow: str, **values: Any) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.flow_controls).where(t.flow_controls.c.flow == flow).values(updated_at=now, **values)
            )
            if done.rowcount == 0:
                values.setdefault("paused", False)
                conn.execute(insert(t.flow_controls).values(flow=flow, updated_at=now, **values))

    # -- system health ---------------------------------------------------------------------------------------------

    def record_health(self, system: str, status: str, reason: str | None = None) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.system_health).where(t.system_health.c.system == system)).mappings().first()
            last_success = now if status == "operational" else (row["last_success_at"] if row else None)
            values = {
                "status": status,
                "reason": clean_text(redact(reason)) if reason else None,
                "checked_at": now,
                "last_success_at": last_success,
            }
            if row is None:
                conn.execute(insert(t.system_health).values(system=system, **values))
            else:
                conn.execute(update(t.system_health).where(t.system_health.c.system == system).values(**values))

    def health(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.system_health)).mappings()
            return {
                r["system"]: {
                    **dict(r),
                    "last_success_at": _aware(r["last_success_at"]),
                    "checked_at": _aware(r["checked_at"]),
                }
                for r in rows
            }

    # =============================================================================================================
    # Runner section (daemon): webhook subscriptions and encrypted credentials. Added for ml_connector.runner.
    # =============================================================================================================

    def webhook_subscriptions(self) -> list[dict[str, Any]]:
        """Jira dynamic webhooks this connector registered, oldest first (``expires_at`` is UTC-aware)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.webhook_subscriptions).order_by(t.webhook_subscriptions.c.created_at)
            ).mappings()
            return [
                {
                    **dict(r),
                    "created_at": _aware(r["created_at"]),
                    "refreshed_at": _aware(r["refreshed_at"]),
                    "expires_at": _aware(r["expires_at"]),
                }
                for r in rows
            ]

    def save_webhook_subscription(
        self, webhook_id: str, *, url: str, events: Sequence[str], jql: str, expires_at: datetime
    ) -> None:
        """Insert or replace one subscription; ``refreshed_at`` is now."""
        now = utcnow()
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(t.webhook_subscriptions.c.created_at).where(t.webhook_subscriptions.c.webhook_id == webhook_id)
            ).first()
            conn.execute(delete(t.webhook_subscriptions).where(t.webhook_subscriptions.c.webhook_id == webhook_id))
            conn.execute(
                insert(t.webhook_subscriptions).values(
                    webhook_id=webhook_id,
                    url=url,
                    events=list(events),
                    jql=jql,
                    created_at=existing[0] if existing else now,
                    refreshed_at=now,
                    expires_at=expires_at,
                )
            )

    def delete_webhook_subscriptions(self, webhook_ids: Iterable[str]) -> None:
        ids = list(webhook_ids)
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(delete(t.webhook_subscriptions).where(t.webhook_subscriptions.c.webhook_id.in_(ids)))

    def get_credential(self, name: str) -> bytes | None:
        """The stored ciphertext for ``name`` (encryption is the caller's job: see runner.credentials)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.credentials.c.ciphertext).where(t.credentials.c.name == name)).first()
        return bytes(row[0]) if row else None

    def put_credential(self, name: str, ciphertext: bytes) -> None:
        """Replace ``name`` in one transaction, so a reader sees the old or the new value, never neither."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.credentials)
                .where(t.credentials.c.name == name)
                .values(ciphertext=ciphertext, updated_at=utcnow())
            )
            if done.rowcount == 0:
                conn.execute(insert(t.credentials).values(name=name, ciphertext=ciphertext, updated_at=utcnow()))
