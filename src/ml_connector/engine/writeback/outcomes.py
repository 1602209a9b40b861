"""What the store keeps of a write-back: accepted statuses and stale deliveries, what IFS got, failures.

The values and audit events are built by pure functions; ``Outcomes`` saves each in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.failures import FailureDecision, decide
from ml_connector.engine.report import RunReport
from ml_connector.engine.timestamps import format_ts
from ml_connector.engine.writeback.changes import StatusChange
from ml_connector.engine.writeback.plan import WB_ERROR
from ml_connector.errors import ConcurrencyConflict
from ml_connector.mapping import IfsUpdate
from ml_connector.store import PARKED, AuditEvent, RecordRow, Store


def _iso(value: datetime | None) -> str | None:
    return format_ts(value) if value is not None else None


def accepted_values(record: RecordRow, change: StatusChange) -> dict[str, Any]:
    """The newest status and its order marks; a status IFS already has leaves nothing to write, nor a backoff."""
    values: dict[str, Any] = {
        "jira_status": change.status,
        "jira_status_category": change.category,
        "jira_updated": change.updated,
        "jira_changelog_id": change.changelog_id,
    }
    if record.written_status == change.status:
        values.update(writeback_attempts=0, writeback_next_attempt_at=None)
    return values


def stale_event(record: RecordRow, change: StatusChange) -> AuditEvent:
    return AuditEvent(
        "stale",
        "warning",
        f"dropped {change.origin} status {change.status!r}: not newer than the change already applied",
        {
            "origin": change.origin,
            "status": change.status,
            "updated": _iso(change.updated),
            "changelog_id": change.changelog_id,
            "applied_status": record.jira_status,
            "applied_updated": _iso(record.jira_updated),
            "applied_changelog_id": record.jira_changelog_id,
        },
    )


def written_values(record: RecordRow, change: StatusChange) -> dict[str, Any]:
    """Only what IFS got: jira_status stays the newest accepted, so if a newer status arrived meanwhile the two
    differ and the next run writes it. A write-back error the record carried is cleared."""
    values: dict[str, Any] = {
        "written_status": change.status,
        "writeback_attempts": 0,
        "writeback_next_attempt_at": None,
    }
    if (record.last_error or "").startswith(WB_ERROR):
        values.update(error_class=None, last_error=None, reason=None, reason_value=None)
    return values


def written_event(change: StatusChange, update: IfsUpdate, conflicts: int) -> AuditEvent:
    return AuditEvent(
        "written_back",
        detail={
            "status": change.status,
            "changes": dict(update.changes),
            "action": update.action,
            "if_match": True,
            "conflicts": conflicts,
            "updated": _iso(change.updated),
            "changelog_id": change.changelog_id,
        },
    )


def failure_values(decision: FailureDecision) -> dict[str, Any]:
    """The outbound state of the record is untouched unless the write-back is parked; the accepted status stays in
    the store (jira_status differs from written_status), so the run after ``writeback_next_attempt_at`` retries."""
    values: dict[str, Any] = {
        "error_class": decision.error_class,
        **decision.reason_columns,
        "last_error": f"{WB_ERROR}{decision.message}",
        "writeback_attempts": decision.attempts,
        "writeback_next_attempt_at": decision.next_attempt_at,
    }
    if decision.state == PARKED:
        values["state"] = PARKED
    return values


def failure_event(decision: FailureDecision, now: datetime) -> AuditEvent:
    parked = decision.state == PARKED
    retry_in = (decision.next_attempt_at - now).total_seconds() if decision.next_attempt_at else None
    return AuditEvent(
        "failed",
        "error",
        f"write-back {'parked' if parked else 'failed, will retry'}: {decision.message}",
        {
            "error_class": decision.error_class,
            "attempts": decision.attempts,
            "parked": parked,
            "next_attempt_at": _iso(decision.next_attempt_at),
            "retry_in_seconds": round(retry_in, 3) if retry_in is not None else None,
        },
    )


@dataclass
class Outcomes:
    """Saves write-back outcomes; ``clock`` decides backoffs (tests move it instead of waiting)."""

    store: Store
    policy: SyncPolicy
    clock: Callable[[], datetime]

    def _save(self, record: RecordRow, values: dict[str, Any], event: AuditEvent, report: RunReport) -> None:
        with self.store.transaction(report.run_id) as tx:
            if values:
                tx.records.update(record.id, **values)
            tx.audit.add(record.id, event)

    def accept(
        self,
        accepted: Sequence[tuple[RecordRow, StatusChange]],
        stale: Sequence[tuple[RecordRow, StatusChange]],
        report: RunReport,
    ) -> None:
        """Durable first: the newest status and its order marks, before IFS is written (a failed write retries from
        here); stale changes are audited in the same transaction."""
        if not accepted and not stale:
            return
        with self.store.transaction(report.run_id) as tx:
            for record, change in accepted:
                tx.records.update(record.id, **accepted_values(record, change))
                record.jira_status, record.jira_status_category = change.status, change.category
                record.jira_updated, record.jira_changelog_id = change.updated, change.changelog_id
            tx.audit.add_many([(record.id, stale_event(record, change)) for record, change in stale])

    def key_moved(self, record: RecordRow, new_key: str, report: RunReport) -> None:
        message = f"Jira key changed {record.jira_key} → {new_key} (issue moved); link kept by issue id"
        self._save(record, {"jira_key": new_key}, AuditEvent("updated", message=message), report)
        record.jira_key = new_key

    def conflict(self, record: RecordRow, exc: ConcurrencyConflict, conflicts: int, report: RunReport) -> None:
        message = f"IFS record changed between read and write (412); re-reading (attempt {conflicts})"
        self._save(record, {}, AuditEvent("conflict", "warning", message, {"error": str(exc)}), report)
        report.add("conflicts")

    def action_taken(self, record: RecordRow, action: str, lost: BaseException, report: RunReport) -> None:
        message = (
            f"the answer to {action} was lost ({type(lost).__name__}); IFS changed the record since "
            "(new ETag), so the action is taken as applied"
        )
        self._save(record, {}, AuditEvent("written_back", "warning", message), report)

    def written(
        self, record: RecordRow, change: StatusChange, update: IfsUpdate, conflicts: int, report: RunReport
    ) -> None:
        self._save(record, written_values(record, change), written_event(change, update, conflicts), report)
        report.add("written_back")

    def failed(self, record: RecordRow, error: BaseException, report: RunReport) -> None:
        """The shared failure policy (DESIGN §4.3): the error class alone decides."""
        now = self.clock()
        decision = decide(error, attempts_so_far=record.writeback_attempts, policy=self.policy, now=now)
        self._save(record, failure_values(decision), failure_event(decision, now), report)
        record.writeback_attempts = decision.attempts
        record.writeback_next_attempt_at = decision.next_attempt_at
        report.add_failure(decision)
