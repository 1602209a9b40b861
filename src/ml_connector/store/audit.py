"""The append-only audit trail: what happened to each record, in which run, with secrets redacted."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from ml_connector.http.redact import redact
from ml_connector.store import schema as t
from ml_connector.store.db import JsonText, clean_text, json_dumps
from ml_connector.store.rows import AuditEvent, AuditRow, aware, utcnow
from ml_connector.store.source import ConnectionSource, Repository, execute_many


def _encoded(payload: Any) -> tuple[JsonText, str]:
    """The detail's JSON text (keys sorted) and its digest: the SHA-256 of that text, which is what the column holds."""
    text = json_dumps(payload, sort_keys=True)
    return JsonText(text), hashlib.sha256(text.encode()).hexdigest()


_INSERT = insert(t.audit_events)


class AuditRepository(Repository):
    """Events are stamped with ``run_id``: the transaction's run, or none outside one."""

    def __init__(self, source: ConnectionSource, run_id: int | None = None) -> None:
        super().__init__(source)
        self.run_id = run_id

    def add(self, record_id: int, event: AuditEvent) -> None:
        self.add_many([(record_id, event)])

    def add_many(self, rows: Sequence[tuple[int, AuditEvent]]) -> None:
        if not rows:
            return
        now = utcnow()
        values = [self._values(record_id, event, now) for record_id, event in rows]
        with self._source.writing() as conn:
            execute_many(conn, _INSERT, values)

    def trail(self, record_id: int, *, limit: int | None = None) -> list[AuditRow]:
        """A record's events, oldest first (the first ``limit`` of them)."""
        query = (
            select(t.audit_events)
            .where(self._mine(t.audit_events), t.audit_events.c.record_id == record_id)
            .order_by(t.audit_events.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._source.reading() as conn:
            return [AuditRow(**{**dict(r), "at": aware(r["at"])}) for r in conn.execute(query).mappings()]

    def _values(self, record_id: int, event: AuditEvent, now: datetime) -> dict[str, Any]:
        # Encoded once: the digest is taken of the very text the column stores.
        detail, digest = _encoded(redact(dict(event.detail))) if event.detail is not None else (None, None)
        return {
            "connection": self.connection,
            "record_id": record_id,
            "run_id": self.run_id,
            "at": now,
            "event": event.event,
            "outcome": event.outcome,
            "message": clean_text(redact(event.message)) if event.message else None,
            "detail": detail,
            "digest": digest,
        }
