"""What the dashboard controls and shows: per-flow controls (pause, sync now) and each system's health."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, insert, select, update

from ml_connector.http.redact import redact
from ml_connector.store import schema as t
from ml_connector.store.db import clean_text
from ml_connector.store.rows import aware, utcnow
from ml_connector.store.source import Repository


class FlowControlRepository(Repository):
    def get(self, flow: str) -> dict[str, Any]:
        """The flow's controls; the defaults (running, no sync asked) when none were ever set."""
        with self._source.reading() as conn:
            row = conn.execute(select(t.flow_controls).where(self._where(flow))).mappings().first()
        if row is None:
            return {"flow": flow, "paused": False, "sync_requested_at": None}
        return {k: v for k, v in row.items() if k != "connection"}

    def set(self, flow: str, **values: Any) -> None:
        now = utcnow()
        with self._source.writing() as conn:
            done = conn.execute(update(t.flow_controls).where(self._where(flow)).values(updated_at=now, **values))
            if done.rowcount == 0:
                values.setdefault("paused", False)
                conn.execute(
                    insert(t.flow_controls).values(connection=self.connection, flow=flow, updated_at=now, **values)
                )

    def _where(self, flow: str) -> ColumnElement[bool]:
        return and_(self._mine(t.flow_controls), t.flow_controls.c.flow == flow)


class HealthRepository(Repository):
    def record(self, system: str, status: str, reason: str | None = None) -> None:
        """The outcome of a check of ``system``; an ``operational`` one also moves its last success."""
        now = utcnow()
        where = and_(self._mine(t.system_health), t.system_health.c.system == system)
        with self._source.writing() as conn:
            row = conn.execute(select(t.system_health).where(where)).mappings().first()
            last_success = now if status == "operational" else (row["last_success_at"] if row else None)
            values = {
                "status": status,
                "reason": clean_text(redact(reason)) if reason else None,
                "checked_at": now,
                "last_success_at": last_success,
            }
            if row is None:
                conn.execute(insert(t.system_health).values(connection=self.connection, system=system, **values))
            else:
                conn.execute(update(t.system_health).where(where).values(**values))

    def all(self) -> dict[str, dict[str, Any]]:
        """The last check of every system, by system name."""
        with self._source.reading() as conn:
            rows = conn.execute(select(t.system_health).where(self._mine(t.system_health))).mappings()
            return {
                r["system"]: {
                    **dict(r),
                    "last_success_at": aware(r["last_success_at"]),
                    "checked_at": aware(r["checked_at"]),
                }
                for r in rows
            }
