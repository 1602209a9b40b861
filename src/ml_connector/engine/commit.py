"""Plans become record states: one transaction per page writes the states, the audit events and the cursor.

Also the one place a record's failure is stored (``record_failure``), for mapping, payload and Jira errors alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from ml_connector.config.models import FlowConfig, SyncPolicy
from ml_connector.engine.failures import FailureDecision, decide, is_systemic
from ml_connector.engine.plan import Fail, Mapped, Plan, Skip, Update, awaiting_404_check
from ml_connector.engine.ports import RecordStore, RecordTx
from ml_connector.engine.report import RunReport
from ml_connector.engine.timestamps import format_ts, parse_ts
from ml_connector.mapping.changes import bounded_source, bounded_source_whole
from ml_connector.store import (
    PARKED,
    PENDING_CREATE,
    PENDING_UPDATE,
    RETRY,
    SYNCED,
    AuditEvent,
    KnownTexts,
    RecordRow,
    safe_json,
    utcnow,
)

log = structlog.get_logger("ml_connector.engine")

# A record with no failure pending; with SYNCED_CLEAN, one whose issue matches its draft.
NO_FAILURE: dict[str, Any] = {
    "next_attempt_at": None,
    "error_class": None,
    "last_error": None,
    "reason": None,
    "reason_value": None,
}
SYNCED_CLEAN: dict[str, Any] = {"state": SYNCED, "attempts": 0, **NO_FAILURE}


@dataclass(frozen=True)
class RunScope:
    """One run of one flow: its config, the failure policy and the report every step counts into."""

    flow: FlowConfig
    policy: SyncPolicy
    report: RunReport


@dataclass
class _PageWrites:
    """What one page's transaction writes; new records and most audit events go in one statement each."""

    tx: RecordTx
    scope: RunScope
    audits: list[tuple[int, AuditEvent]] = field(default_factory=list)
    new_rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    new_audits: list[tuple[str, AuditEvent]] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)  # existing records given Jira work
    updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # their changes, all with the same keys
    inserted: list[RecordRow] = field(default_factory=list)  # new records, as written

    def flush(self) -> None:
        self.tx.records.update_many(self.updates)
        new = self.tx.records.insert_many(self.scope.flow.name, self.new_rows)
        self.inserted = [new[key] for key, _ in self.new_rows]
        self.audits += [(new[key].id, event) for key, event in self.new_audits]
        self.tx.audit.add_many(self.audits)


def commit_page(
    store: RecordStore,
    scope: RunScope,
    plans: Sequence[Plan],
    signpost: datetime,
    *,
    move_cursor: bool = True,
    read_ts: Callable[[Any], datetime | None] = parse_ts,
) -> tuple[list[RecordRow], datetime | None]:
    """One transaction: record states, audit events, cursor. Returns the records with Jira work to do, as committed,
    and the newest source timestamp of the page (``read_ts`` reads a row's cursor value as an instant).

    New records come back as written (a backfill's pages are all new: no read back); records that existed are read
    again after the commit."""
    cursor_field = scope.flow.cursor_field
    newest = max((s for s in (read_ts(_source_value(p, cursor_field)) for p in plans) if s is not None), default=None)
    with store.transaction(scope.report.run_id) as tx:
        writes = _PageWrites(tx, scope)
        for plan in plans:
            value = _source_value(plan, cursor_field)
            source_ts = str(value) if value is not None else None
            if isinstance(plan, Fail):
                _commit_fail(writes, plan, source_ts)
            elif isinstance(plan, Skip):
                _commit_skip(writes, plan, source_ts)
            else:
                _commit_mapped(writes, plan, source_ts)
        writes.flush()
        if newest is not None and move_cursor:
            advance_cursor(tx, scope.flow.name, min(newest, signpost))
    return store.records.by_ids(writes.updated_ids) + writes.inserted, newest


def advance_cursor(tx: RecordTx, flow: str, candidate: datetime) -> None:
    previous = parse_ts(tx.cursors.get(flow))
    if previous is None or candidate > previous:
        tx.cursors.set(flow, format_ts(candidate))


def _source_value(plan: Plan, cursor_field: str | None) -> Any:
    return plan.row.get(cursor_field) if cursor_field else None


def _commit_fail(writes: _PageWrites, plan: Fail, source_ts: str | None) -> None:
    scope, rec = writes.scope, plan.existing
    attempts = rec.attempts if rec is not None else 0
    decision = decide(plan.error, attempts_so_far=attempts, policy=scope.policy, now=utcnow())
    message = f"mapping failed: {decision.message}"
    values: dict[str, Any] = {
        "state": decision.state,
        "source_hash": plan.source_hash,
        "source_ts": source_ts,
        "error_class": decision.error_class,
        **decision.reason_columns,
        "last_error": message,
        "attempts": decision.attempts,
        "next_attempt_at": decision.next_attempt_at,
        "draft": None,  # mapped again from fresh IFS data when retried or replayed
        "draft_hash": None,
    }
    if rec is None:
        rec = writes.tx.records.insert(scope.flow.name, plan.key, **values)
    elif rec.state != PARKED or rec.last_error != message or rec.source_hash != plan.source_hash:
        writes.tx.records.update(rec.id, **values)
    else:
        return  # the same bad record seen again: already parked with this reason
    detail = {
        **decision.audit_detail(),
        "field": getattr(plan.error, "field", None),
        "source_hash": plan.source_hash,
        "source": bounded_source(plan.row),  # the data that failed, for the record page
    }
    writes.audits.append((rec.id, AuditEvent("failed", "error", message, detail)))
    scope.report.add_failure(decision)


def _commit_skip(writes: _PageWrites, plan: Skip, source_ts: str | None) -> None:
    rec = plan.existing
    if rec is not None and rec.source_hash != plan.source_hash:
        writes.tx.records.update(rec.id, source_hash=plan.source_hash, source_ts=source_ts)
        writes.audits.append((rec.id, AuditEvent("skipped", message="source changed, issue content did not")))
    writes.scope.report.add("unchanged")


def _commit_mapped(writes: _PageWrites, plan: Mapped, source_ts: str | None) -> None:
    """Create, reconcile or update: store the draft; the apply step does the Jira work (a reconcile keeps its
    ``create_attempted_at``, so the apply step searches before it creates)."""
    draft = safe_json(plan.draft.as_dict())  # made JSON-safe once for the record row and the "mapped" event
    content: dict[str, Any] = {
        "source_hash": plan.source_hash,
        "source_ts": source_ts,
        "draft": draft,
        "draft_hash": plan.draft.content_hash,
    }
    state = PENDING_UPDATE if isinstance(plan, Update) else PENDING_CREATE
    warnings = "; ".join(plan.draft.warnings) or None
    writes.scope.report.note_warnings(plan.draft.notes)
    source, whole = bounded_source_whole(plan.row)
    detail: dict[str, Any] = {"draft": draft, "source": source}
    # The texts the hashes encoded, taken as they are instead of encoding the draft and the row again.
    texts = {"draft": plan.draft.json_text, "source": plan.source_text if whole else None}
    known = {name: text for name, text in texts.items() if text is not None}
    mapped = AuditEvent(
        "mapped", "warning" if warnings else "ok", warnings, KnownTexts(detail, known) if known else detail
    )
    rec = plan.existing
    if rec is None:
        writes.new_rows.append((plan.key, {"state": state, **content}))
        writes.new_audits += [(plan.key, AuditEvent("fetched", detail={"source_ts": source_ts})), (plan.key, mapped)]
        return
    writes.audits.append((rec.id, mapped))
    if awaiting_404_check(rec):
        # Keep the 404 check's schedule (a record changing every run must not postpone it forever): store the new
        # content; the check edits with it or recreates from it.
        writes.tx.records.update(rec.id, **content)
        return
    attempts = 0 if rec.state in (PARKED, RETRY) else rec.attempts
    writes.updates.append((rec.id, {"state": state, **content, **NO_FAILURE, "attempts": attempts}))
    writes.updated_ids.append(rec.id)


def record_failure(
    tx: RecordTx, record: RecordRow, error: BaseException, scope: RunScope, *, keep_intent: bool = True
) -> FailureDecision:
    """Store the policy's decision for ``record`` and audit it; systemic errors propagate (``decide``).

    ``keep_intent=False`` only when Jira certainly made nothing (it refused the create)."""
    decision = decide(error, attempts_so_far=record.attempts, policy=scope.policy, now=utcnow())
    values: dict[str, Any] = {
        "state": decision.state,
        "attempts": decision.attempts,
        "next_attempt_at": decision.next_attempt_at,
        "error_class": decision.error_class,
        **decision.reason_columns,
        "last_error": decision.message,
    }
    if not keep_intent:
        values["create_attempted_at"] = None
    tx.records.update(record.id, **values)
    if decision.deferred:  # back-pressure, not a failure
        event = AuditEvent("retried", "warning", f"rate limited, waiting: {decision.message}", decision.audit_detail())
    else:
        event = AuditEvent("failed", "error", decision.message, decision.audit_detail())
    tx.audit.add(record.id, event)
    scope.report.add_failure(decision)
    log.warning("record.failed", flow=scope.flow.name, key=record.ifs_key, state=decision.state, error=decision.message)
    return decision


def fail_unfinished(store: RecordStore, records: Sequence[RecordRow], error: Exception, scope: RunScope) -> None:
    """Fail those of ``records`` that still wait for this run's work (re-read: some may be done or deferred).

    An intent stays: the failed call may have reached Jira, so the next attempt reconciles first."""
    if is_systemic(error):
        raise error
    now = utcnow()
    current = store.records.by_ids([r.id for r in records])
    with store.transaction(scope.report.run_id) as tx:
        for record in current:
            waiting = record.next_attempt_at is None or record.next_attempt_at <= now
            if record.state in (PENDING_CREATE, PENDING_UPDATE, RETRY) and waiting:
                record_failure(tx, record, error, scope)
