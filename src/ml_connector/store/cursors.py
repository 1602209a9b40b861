"""Cursors: how far each flow has read its source (advanced in the same transaction as the page it covers)."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from ml_connector.store import schema as t
from ml_connector.store.rows import utcnow
from ml_connector.store.source import ConnectionSource, Repository


class CursorRepository(Repository):
    """A cursor written inside a transaction records that transaction's ``run_id``."""

    def __init__(self, source: ConnectionSource, run_id: int | None = None) -> None:
        super().__init__(source)
        self.run_id = run_id

    def get(self, name: str) -> str | None:
        with self._source.reading() as conn:
            value: str | None = conn.execute(
                select(t.cursors.c.value).where(self._mine(t.cursors), t.cursors.c.name == name)
            ).scalar()
        return value

    def set(self, name: str, value: str | None) -> None:
        now = utcnow()
        with self._source.writing() as conn:
            done = conn.execute(
                update(t.cursors)
                .where(self._mine(t.cursors), t.cursors.c.name == name)
                .values(value=value, updated_at=now, run_id=self.run_id)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(t.cursors).values(
                        connection=self.connection, name=name, value=value, updated_at=now, run_id=self.run_id
                    )
                )
