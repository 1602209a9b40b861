"""Write-back flow (Jira → IFS), DESIGN §4.2.

Changes come from JQL polling (``updated >=`` a time-zone-safe bound, overlap deduped by comparing the status with
the last one written) or from the webhook inbox. For each linked issue whose status differs from what IFS last got:
map it, read ETags for the whole batch in one filtered request, PATCH with ``If-Match``; on 412 read again and
re-apply, a bounded number of times. Never ``If-Match: *``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine.failures import decide
from ml_connector.engine.outbound import format_ts, parse_ts
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.errors import AuthError, ConcurrencyConflict, ConfigError, ConnectorError, NotFound, TransientError
from ml_connector.ifs.odata import Key
from ml_connector.jira import jql
from ml_connector.mapping import IfsUpdate, map_status
from ml_connector.store import PARKED, AuditEvent, RecordRow, utcnow

log = structlog.get_logger("ml_connector.engine")

ISSUE_FIELDS = ("status", "updated")


@dataclass(frozen=True)
class StatusChange:
    """A Jira issue's current status as seen by polling or a webhook."""

    jira_id: str
    jira_key: str | None
    status: str
    category: str | None
    updated: datetime | None = None


def change_from_issue(issue: Mapping[str, Any]) -> StatusChange | None:
    fields = issue.get("fields") or {}
    status = fields.get("status") or {}
    name = status.get("name")
    if not name:
        return None
    category = (status.get("statusCategory") or {}).get("key")
    return StatusChange(
        str(issue.get("id")), issue.get("key"), str(name), category, parse_jira_ts(fields.get("updated"))
    )


def parse_jira_ts(value: Any) -> datetime | None:
    """Jira renders ``2025-01-31T02:00:00.000-0800``; Python wants a colon in the offset."""
    if not value:
        return None
    text = str(value)
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return parse_ts(text)


class WritebackSync:
    def __init__(self, connector: Connector, flow: FlowConfig, *, stop: threading.Event | None = None) -> None:
        self.c = connector
        self.flow = flow
        self.wb = flow.writeback
        self.policy = connector.config.sync
        self.stop = stop or threading.Event()
        self.entity_set = self.wb.entity_set or flow.entity_set

    @property
    def cursor_name(self) -> str:
        return f"{self.flow.name}:writeback"

    # ------------------------------------------------------------------------------------------------ polling

    def run(self, *, dry_run: bool = False) -> RunReport:
        report = RunReport(self.flow.name, "writeback", dry_run=dry_run)
        if not self.wb.enabled:
            return report
        with self.c.run_row(report, default_system="jira"):
            changes, newest = self._poll(report)
            changes += self._pending(changes)
            self.c.note_contact("jira")
            self.apply(changes, report, dry_run=dry_run)
            if changes:
                self.c.note_contact("ifs")
            if newest is not None and not dry_run and not report.interrupted:
                self.c.store.set_cursor(self.cursor_name, format_ts(newest))
        return report

    def _pending(self, polled: Sequence[StatusChange]) -> list[StatusChange]:
        """Write-backs that failed earlier: their Jira status is in the store, so retry them without a Jira call."""
        seen = {c.jira_id for c in polled}
        return [
            StatusChange(str(r.jira_id), r.jira_key, str(r.jira_status), r.jira_status_category)
            for r in self.c.store.pending_writebacks(self.flow.name)
            if r.jira_id and r.jira_id not in seen
        ]

    def _projects(self) -> list[str]:
        linked = self.c.store.linked_projects(self.flow.name)
        if self.flow.mapping.project.default:
            linked.add(self.flow.mapping.project.default)
        linked.update(self.flow.mapping.project.map.values())
        return sorted(linked)

    def _poll(self, report: RunReport) -> tuple[list[StatusChange], datetime | None]:
        signpost = utcnow()
        cursor = parse_ts(self.c.store.get_cursor(self.cursor_name))
        if cursor is None:
            first = self.c.store.list_records(flow=self.flow.name, limit=1)
            if not first:
                return [], None
            assert first[0].created_at is not None
            cursor = first[0].created_at
        since = cursor - timedelta(seconds=self.wb.lookback)
        projects = self._projects()
        if not projects:
            return [], None
        query = jql.order_by(
            jql.all_of(jql.in_("project", projects), self.c.jira.updated_since_clause(since)), "updated ASC"
        )
        changes: list[StatusChange] = []
        newest: datetime | None = None
        for issue in self.c.jira.search(query, fields=ISSUE_FIELDS, page_size=100):
            change = change_from_issue(issue)
            if change is None:
                continue
            changes.append(change)
            if change.updated is not None and (newest is None or change.updated > newest):
                newest = change.updated
        report.add("polled", len(changes))
        if newest is not None:
            newest = min(newest, signpost)
        return changes, newest

    # ------------------------------------------------------------------------------------------------ applying

    def apply(self, changes: Sequence[StatusChange], report: RunReport, *, dry_run: bool = False) -> None:
        """Write the statuses that differ from what IFS last got; records not linked to this flow are ignored."""
        latest: dict[str, StatusChange] = {}
        for change in changes:  # several events for one issue: only its newest status matters
            latest[change.jira_id] = change
        changes = list(latest.values())
        records = self.c.store.records_by_jira_ids(c.jira_id for c in changes)
        todo: list[tuple[RecordRow, StatusChange, IfsUpdate]] = []
        settled: list[tuple[RecordRow, StatusChange]] = []
        for change in changes:
            record = records.get(change.jira_id)
            if record is None or record.flow != self.flow.name:
                continue
            if change.jira_key and change.jira_key != record.jira_key and not dry_run:
                self._note_key(record, change.jira_key, report)
            if record.written_status == change.status:
                if record.jira_status != change.status:
                    settled.append((record, change))  # moved back before a pending write-back went through
                continue  # already in IFS: the overlap of polling, a duplicate event, or our own echo
            if record.written_status is None and change.category == "new" and not self.wb.initial:
                if record.jira_status is not None:
                    settled.append((record, change))
                continue  # a new issue nobody has moved yet (or moved back): nothing to tell IFS
            update = map_status(
                self.wb, status=change.status, category=change.category, jira_key=change.jira_key or record.jira_key
            )
            if update is None:
                continue
            todo.append((record, change, update))
        if dry_run:
            report.add("would_write_back", len(todo))
            return
        with self.c.store.transaction(report.run_id) as tx:
            # Durable first: if the IFS write fails, the next run retries from here even after the poll moved on.
            for record, change, _update in todo:
                if record.jira_status != change.status or record.jira_status_category != change.category:
                    tx.update_record(record.id, jira_status=change.status, jira_status_category=change.category)
            for record, change in settled:  # nothing left to write: drop the stale pending status
                tx.update_record(record.id, jira_status=change.status, jira_status_category=change.category)
        for start in range(0, len(todo), 200):
            if self.stop.is_set():
                report.interrupted = True
                return
            self._write_batch(todo[start : start + 200], report)

    def _note_key(self, record: RecordRow, new_key: str, report: RunReport) -> None:
        with self.c.store.transaction(report.run_id) as tx:
            tx.update_record(record.id, jira_key=new_key)
            tx.audit(
                record.id,
                AuditEvent(
                    "updated",
                    message=f"Jira key changed {record.jira_key} → {new_key} (issue moved); link kept by issue id",
                ),
            )
        record.jira_key = new_key

    def _key(self, record: RecordRow) -> Key:
        if self.flow.key_type == "int":
            return {self.flow.key: int(record.ifs_key)}
        return {self.flow.key: record.ifs_key}

    def _write_batch(self, batch: Sequence[tuple[RecordRow, StatusChange, IfsUpdate]], report: RunReport) -> None:
        # ETags for the whole batch in a few filtered reads instead of one GET per record.
        keys = [self._key(r) for r, _, _ in batch]
        written = sorted({name for _, _, update in batch for name in update.changes})
        current = self.c.ifs.get_many_by_keys(self.entity_set, keys, select=[self.flow.key, *written])
        for (record, change, update), key in zip(batch, keys, strict=True):
            if self.stop.is_set():
                report.interrupted = True
                return
            found = current.get(tuple(key.values()))
            self._write_one(record, change, update, key, found, report)

    def _write_one(
        self,
        record: RecordRow,
        change: StatusChange,
        update: IfsUpdate,
        key: Key,
        found: tuple[dict[str, Any], str] | None,
        report: RunReport,
    ) -> None:
        store = self.c.store
        conflicts = 0
        while True:
            try:
                if found is None:
                    found = self.c.ifs.get(self.entity_set, key)
                row, etag = found
                needed = {k: v for k, v in update.changes.items() if row.get(k) != v}
                if needed:
                    row, etag = self.c.ifs.patch(self.entity_set, key, needed, etag)
                if update.action:
                    self.c.ifs.call_action(self.entity_set, key, update.action, etag)
                break
            except ConcurrencyConflict as exc:
                conflicts += 1
                with store.transaction(report.run_id) as tx:
                    tx.audit(
                        record.id,
                        AuditEvent(
                            "conflict",
                            "warning",
                            f"IFS record changed between read and write (412); re-reading (attempt {conflicts})",
                            {"error": str(exc)},
                        ),
                    )
                report.add("conflicts")
                if conflicts > self.policy.writeback_conflict_retries:
                    self._failed(record, exc, transient=True, report=report)
                    return
                found = None
            except NotFound as exc:
                self._failed(record, exc, transient=False, report=report)
                return
            except (AuthError, ConfigError):
                raise
            except ConnectorError as exc:
                self._failed(record, exc, transient=isinstance(exc, TransientError), report=report)
                return
        with store.transaction(report.run_id) as tx:
            tx.update_record(
                record.id,
                written_status=change.status,
                jira_status=change.status,
                error_class=None,
                last_error=None,
                attempts=0,
            )
            tx.audit(
                record.id,
                AuditEvent(
                    "written_back",
                    detail={
                        "status": change.status,
                        "changes": dict(update.changes),
                        "action": update.action,
                        "if_match": True,
                        "conflicts": conflicts,
                    },
                ),
            )
        report.add("written_back")

    def _failed(self, record: RecordRow, error: ConnectorError, *, transient: bool, report: RunReport) -> None:
        # The outbound state of the record is untouched; the pending status stays in the store (jira_status differs
        # from written_status), so every later run retries it, until attempts run out and it is parked.
        decision = decide(error, transient=transient, attempts_so_far=record.attempts, policy=self.policy, now=utcnow())
        with self.c.store.transaction(report.run_id) as tx:
            values: dict[str, Any] = {
                "error_class": decision.error_class,
                "last_error": f"write-back: {decision.message}",
            }
            if decision.state == PARKED:
                values.update(state=PARKED, attempts=decision.attempts)
            else:
                values.update(attempts=decision.attempts)
            tx.update_record(record.id, **values)
            tx.audit(
                record.id,
                AuditEvent(
                    "failed", "error", f"write-back failed: {decision.message}", {"error_class": decision.error_class}
                ),
            )
        report.add("failed" if decision.state != PARKED else "parked")


def process_inbox(connector: Connector, *, limit: int = 500, stop: threading.Event | None = None) -> RunReport:
    """Apply pending webhook events: the same write path as polling."""
    store = connector.store
    report = RunReport("*", "webhook")
    events = store.pending_inbox(limit=limit)
    if not events:
        return report
    by_flow: dict[str, list[StatusChange]] = {}
    ignored: list[int] = []
    handled: list[int] = []
    ids = [str(e["issue_id"]) for e in events if e.get("issue_id")]
    records = store.records_by_jira_ids(ids)
    for event in events:
        issue = (event.get("payload") or {}).get("issue") or {}
        change = change_from_issue(issue)
        record = records.get(str(event.get("issue_id")))
        if change is None or record is None or event.get("event") == "jira:issue_deleted":
            ignored.append(int(event["id"]))
            continue
        by_flow.setdefault(record.flow, []).append(change)
        handled.append(int(event["id"]))
    for flow_name, changes in by_flow.items():
        flow = connector.config.flow(flow_name)
        WritebackSync(connector, flow, stop=stop).apply(changes, report)
    if report.interrupted:
        # Stopped part way: leave the events pending; the next pass re-applies them (already-written ones are
        # skipped because their status equals written_status).
        store.mark_inbox(ignored, "ignored")
        return report
    store.mark_inbox(handled, "processed")
    store.mark_inbox(ignored, "ignored")
    report.add("events", len(events))
    return report
