"""The append-only audit trail: what happened to each record, in which run, with secrets redacted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from ml_connector.http.redact import redact
from ml_connector.store import schema as t
from ml_connector.store.db import JsonText, KnownTexts, clean_text, json_dumps
from ml_connector.store.rows import AuditEvent, AuditRow, aware, utcnow
from ml_connector.store.source import ConnectionSource, Repository, execute_many


def _encoded(payload: Any, known: Mapping[str, str] | None = None) -> tuple[JsonText, str]:
    """The detail's JSON text (keys sorted) and its digest: the SHA-256 of that text, which is what the column holds.
    ``known``: texts of some of its values, as ``json_dumps(value, sort_keys=True)`` writes them."""
    text = _composed(payload, known) if known and isinstance(payload, dict) else json_dumps(payload, sort_keys=True)
    return JsonText(text), hashlib.sha256(text.encode()).hexdigest()


def _composed(payload: dict[Any, Any], known: Mapping[str, str]) -> str:
    """``json_dumps(payload, sort_keys=True)`` written key by key, taking the known texts as they are."""
    if not all(type(k) is str and k.isascii() and "\x00" not in k for k in payload):
        return json_dumps(payload, sort_keys=True)  # keys json_safe would change: the whole way
    parts = [
        f"{json.dumps(k)}: {known[k] if k in known else json_dumps(v, sort_keys=True)}"
        for k, v in sorted(payload.items())
    ]
    return "{" + ", ".join(parts) + "}"


def _known_texts(detail: Mapping[str, Any], redacted: Any) -> dict[str, str] | None:
    """The known texts of ``detail`` that still stand for the redacted detail's values (redaction left them)."""
    if not isinstance(detail, KnownTexts) or not isinstance(redacted, dict):
        return None
    return {k: text for k, text in detail.texts.items() if k in redacted and redacted[k] is detail[k]}


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
        detail, digest = _detail(event.detail) if event.detail is not None else (None, None)
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


def _detail(detail: Mapping[str, Any]) -> tuple[JsonText, str]:
    redacted = redact(dict(detail))
    return _encoded(redacted, _known_texts(detail, redacted))
