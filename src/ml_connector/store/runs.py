"""Runs: one row per sync, write-back or replay, with its status and counts."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import insert, select, update

from ml_connector.http.redact import redact
from ml_connector.store import schema as t
from ml_connector.store.db import clean_text
from ml_connector.store.rows import RunRow, utcnow
from ml_connector.store.source import Repository

_c = t.runs.c


class RunRepository(Repository):
    def start(self, flow: str, kind: str, *, dry_run: bool = False) -> int:
        """Open a run; returns its id."""
        values = {
            "connection": self.connection,
            "flow": flow,
            "kind": kind,
            "started_at": utcnow(),
            "status": "running",
            "dry_run": dry_run,
        }
        with self._source.writing() as conn:
            key = conn.execute(insert(t.runs).values(**values, counts={})).inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish(self, run_id: int, status: str, counts: Mapping[str, int], error: str | None = None) -> None:
        values = {
            "finished_at": utcnow(),
            "status": status,
            "counts": dict(counts),
            "error": clean_text(redact(error)) if error else None,
        }
        with self._source.writing() as conn:
            conn.execute(update(t.runs).where(self._mine(t.runs), _c.id == run_id).values(**values))

    def recent(self, *, flow: str | None = None, limit: int = 50) -> list[RunRow]:
        """The newest runs first."""
        query = select(t.runs).where(self._mine(t.runs)).order_by(_c.id.desc()).limit(limit)
        if flow:
            query = query.where(_c.flow == flow)
        with self._source.reading() as conn:
            return [RunRow.from_row(row) for row in conn.execute(query).mappings()]

    def last(self, flow: str, *, kind: str | None = None, succeeded: bool = False) -> RunRow | None:
        """The flow's newest real (not dry) run, of ``kind``, and only a succeeded or partial one if asked."""
        query = select(t.runs).where(self._mine(t.runs), _c.flow == flow, _c.dry_run.is_(False))
        if kind:
            query = query.where(_c.kind == kind)
        if succeeded:
            query = query.where(_c.status.in_(("succeeded", "partial")))
        with self._source.reading() as conn:
            row = conn.execute(query.order_by(_c.id.desc()).limit(1)).mappings().first()
        return RunRow.from_row(row) if row else None
