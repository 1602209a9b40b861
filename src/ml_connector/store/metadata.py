"""Far-side metadata kept across processes (``metadata_cache``): JSON values by name, with when and from where they
were read. What the values mean, and how old one may be, is the caller's business (engine/runtime.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from ml_connector.store import schema as t
from ml_connector.store.rows import aware, utcnow
from ml_connector.store.source import Repository

_c = t.metadata_cache.c


@dataclass(frozen=True)
class CachedMetadata:
    value: Any
    fetched_at: datetime


class MetadataCacheRepository(Repository):
    def get(self, name: str, *, source: str, max_age: timedelta) -> CachedMetadata | None:
        """The entry ``name`` if it was read from ``source`` within ``max_age`` (else None)."""
        with self._source.reading() as conn:
            row = conn.execute(
                select(_c.value, _c.source, _c.fetched_at).where(self._mine(t.metadata_cache), _c.name == name)
            ).first()
        if row is None or row.source != source:
            return None
        fetched = aware(row.fetched_at)
        if fetched is None or fetched < utcnow() - max_age or fetched > utcnow():
            return None  # too old, or stamped by a clock ahead of ours: not to be trusted for its whole age
        return CachedMetadata(row.value, fetched)

    def put(self, name: str, value: Any, *, source: str, fetched_at: datetime | None = None) -> None:
        """Remember (or replace) ``name``; an upsert, since two processes may read the same metadata at once."""
        when = fetched_at or utcnow()
        with self._source.writing() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(t.metadata_cache).values(
                connection=self.connection, name=name, source=source, value=value, fetched_at=when
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[_c.connection, _c.name],
                    set_={"source": source, "value": value, "fetched_at": when},
                )
            )

    def forget(self, *prefixes: str) -> int:
        """Drop the entries whose name starts with any of ``prefixes``; how many were dropped."""
        dropped = 0
        with self._source.writing() as conn:
            for prefix in prefixes:
                condition = _c.name.startswith(prefix, autoescape=True)
                dropped += conn.execute(
                    delete(t.metadata_cache).where(self._mine(t.metadata_cache), condition)
                ).rowcount
        return dropped
