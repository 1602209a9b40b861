"""Leases: named, expiring locks shared by every process on the store (the scheduler, one run per flow)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ml_connector.store import schema as t
from ml_connector.store.rows import aware, utcnow
from ml_connector.store.source import Repository

_c = t.leases.c


class LeaseRepository(Repository):
    def acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew lease ``name`` for ``holder``; False while someone else holds an unexpired lease."""
        now = utcnow()
        with self._source.writing() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"lease:{self.connection}:{name}",))
            row = conn.execute(select(t.leases).where(self._mine(t.leases), _c.name == name)).mappings().first()
            if row is None:
                return _insert(conn, self.connection, name, holder, now, now + ttl)
            expires = aware(row["expires_at"])
            assert expires is not None
            if row["holder"] != holder and expires > now:
                return False
            return _take_over(conn, row, holder, now, now + ttl)

    def release(self, name: str, holder: str) -> None:
        with self._source.writing() as conn:
            conn.execute(delete(t.leases).where(self._mine(t.leases), _c.name == name, _c.holder == holder))

    def holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds ``name`` and until when; None when nobody holds it or the lease has expired."""
        with self._source.reading() as conn:
            row = conn.execute(select(t.leases).where(self._mine(t.leases), _c.name == name)).mappings().first()
        if row is None:
            return None
        expires = aware(row["expires_at"])
        assert expires is not None
        return (row["holder"], expires) if expires > utcnow() else None


def _insert(conn: Connection, connection: str, name: str, holder: str, now: datetime, expires: datetime) -> bool:
    """A new lease; False when another process inserted it first."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.leases).values(
                    connection=connection, name=name, holder=holder, acquired_at=now, expires_at=expires
                )
            )
    except IntegrityError:
        return False
    return True


def _take_over(conn: Connection, row: Mapping[Any, Any], holder: str, now: datetime, expires: datetime) -> bool:
    """Renew or take over the lease ``row`` read; False when it changed since (another process won)."""
    renewing = row["holder"] == holder
    taken = conn.execute(
        update(t.leases)
        .where(
            _c.connection == row["connection"],
            _c.name == row["name"],
            _c.holder == row["holder"],
            _c.expires_at == row["expires_at"],
        )
        .values(holder=holder, acquired_at=row["acquired_at"] if renewing else now, expires_at=expires)
    )
    return taken.rowcount == 1
