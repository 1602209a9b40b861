"""Jira dynamic webhooks this connector registered (the daemon refreshes them before they expire)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from ml_connector.store import schema as t
from ml_connector.store.rows import aware, utcnow
from ml_connector.store.source import Repository

_c = t.webhook_subscriptions.c


class WebhookRepository(Repository):
    def all(self) -> list[dict[str, Any]]:
        """Every subscription, oldest first (times UTC-aware)."""
        with self._source.reading() as conn:
            rows = conn.execute(
                select(t.webhook_subscriptions).where(self._mine(t.webhook_subscriptions)).order_by(_c.created_at)
            ).mappings()
            return [
                {
                    **{k: v for k, v in r.items() if k != "connection"},
                    "created_at": aware(r["created_at"]),
                    "refreshed_at": aware(r["refreshed_at"]),
                    "expires_at": aware(r["expires_at"]),
                }
                for r in rows
            ]

    def save(self, webhook_id: str, *, url: str, events: Sequence[str], jql: str, expires_at: datetime) -> None:
        """Insert or replace one subscription; ``refreshed_at`` is now."""
        now = utcnow()
        with self._source.writing() as conn:
            mine = self._mine(t.webhook_subscriptions)
            existing = conn.execute(select(_c.created_at).where(mine, _c.webhook_id == webhook_id)).first()
            conn.execute(delete(t.webhook_subscriptions).where(mine, _c.webhook_id == webhook_id))
            conn.execute(
                insert(t.webhook_subscriptions).values(
                    connection=self.connection,
                    webhook_id=webhook_id,
                    url=url,
                    events=list(events),
                    jql=jql,
                    created_at=existing[0] if existing else now,
                    refreshed_at=now,
                    expires_at=expires_at,
                )
            )

    def delete(self, webhook_ids: Iterable[str]) -> None:
        ids = list(webhook_ids)
        if not ids:
            return
        with self._source.writing() as conn:
            conn.execute(
                delete(t.webhook_subscriptions).where(self._mine(t.webhook_subscriptions), _c.webhook_id.in_(ids))
            )
