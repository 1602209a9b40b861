"""The webhook inbox: Jira deliveries stored as they arrive, applied later, each delivery id once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ml_connector.store import schema as t
from ml_connector.store.rows import utcnow
from ml_connector.store.source import Repository

_c = t.webhook_inbox.c


class InboxRepository(Repository):
    def add(self, delivery_id: str, event: str, issue_id: str | None, payload: Mapping[str, Any]) -> bool:
        """Store a delivery; False when this delivery id was already stored (a duplicate)."""
        values = {
            "connection": self.connection,
            "delivery_id": delivery_id,
            "event": event,
            "issue_id": issue_id,
            "payload": dict(payload),
        }
        try:
            with self._source.writing() as conn:
                conn.execute(insert(t.webhook_inbox).values(**values, received_at=utcnow(), status="pending"))
        except IntegrityError:
            return False
        return True

    def pending(self, *, limit: int = 500) -> list[dict[str, Any]]:
        """Deliveries not yet applied, oldest first."""
        query = (
            select(t.webhook_inbox)
            .where(self._mine(t.webhook_inbox), _c.status == "pending")
            .order_by(_c.id)
            .limit(limit)
        )
        with self._source.reading() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def mark(self, ids: Sequence[int], status: str, error: str | None = None) -> None:
        if not ids:
            return
        with self._source.writing() as conn:
            conn.execute(
                update(t.webhook_inbox)
                .where(self._mine(t.webhook_inbox), _c.id.in_(list(ids)))
                .values(status=status, processed_at=utcnow(), error=error)
            )

    def count(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(t.webhook_inbox).where(self._mine(t.webhook_inbox))
        if status:
            query = query.where(_c.status == status)
        with self._source.reading() as conn:
            return int(conn.execute(query).scalar_one())
