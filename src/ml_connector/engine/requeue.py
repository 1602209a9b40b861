"""Replay's state policy: which state a failed record goes back to, and what of its past is forgotten."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, RETRY, AuditEvent, RecordRow, Store


def requeue_failed(
    store: Store,
    *,
    flow: str | None = None,
    keys: Sequence[str] = (),
    states: Sequence[str] = (PARKED, RETRY),
    since: datetime | None = None,
    run_id: int | None = None,
) -> list[RecordRow]:
    """Put failed records back in the work queue in one transaction; each gets a ``replayed`` audit event.

    A linked record goes to pending update, an unlinked one to pending create, both with no attempts or backoff
    left. Returns the records as they were before.
    """
    with store.transaction(run_id) as tx:
        rows = tx.records.in_states(states, flow=flow, keys=keys, since=since)
        for target in (PENDING_UPDATE, PENDING_CREATE):
            ids = [row.id for row in rows if _target(row) == target]
            # draft=None: the record is mapped again from fresh IFS data, so a fixed config takes effect.
            tx.records.set_many(
                ids,
                state=target,
                attempts=0,
                next_attempt_at=None,
                writeback_attempts=0,
                writeback_next_attempt_at=None,
                draft=None,
                draft_hash=None,
            )
        tx.audit.add_many(
            [(row.id, AuditEvent("replayed", message=f"re-queued from {row.state} by replay")) for row in rows]
        )
    return rows


def _target(row: RecordRow) -> str:
    return PENDING_UPDATE if row.jira_id else PENDING_CREATE
