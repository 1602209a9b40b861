"""The Jira user cache: e-mail address to account id (or None: no such user), with the time it was resolved."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ml_connector.store import schema as t
from ml_connector.store.rows import aware, utcnow
from ml_connector.store.source import Repository


class UserRepository(Repository):
    def cached(self, *, max_age: timedelta, emails: Collection[str] | None = None) -> dict[str, str | None]:
        """Every entry resolved within ``max_age`` (of ``emails`` only, when given): e-mail → account id. A page
        asks for its own assignees: the whole cache may hold thousands."""
        cutoff = utcnow() - max_age
        query = select(t.jira_users).where(self._mine(t.jira_users))
        if emails is not None:
            if not emails:
                return {}
            query = query.where(t.jira_users.c.email.in_(sorted({e.lower() for e in emails})))
        with self._source.reading() as conn:
            rows = conn.execute(query).mappings()
            return {r["email"]: r["account_id"] for r in rows if (aware(r["resolved_at"]) or cutoff) >= cutoff}

    def cache(self, email: str, account_id: str | None) -> None:
        """Remember (or refresh) one address; an upsert, since pages mapped side by side may resolve the same one."""
        now = utcnow()
        with self._source.writing() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(t.jira_users).values(
                connection=self.connection, email=email.lower(), account_id=account_id, resolved_at=now
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[t.jira_users.c.connection, t.jira_users.c.email],
                    set_={"account_id": account_id, "resolved_at": now},
                )
            )
