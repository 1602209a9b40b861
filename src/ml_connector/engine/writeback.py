"""Write-back flow (Jira → IFS), DESIGN §4.2 and §4.3.

Changes come from JQL polling (``updated >=`` a time-zone-safe bound, overlap deduped by comparing the status with
the last one written) or from the webhook inbox. Order, not arrival: a change is accepted only when it is newer than
the newest one the store accepted for the issue (the issue's ``updated``, then the changelog id); older or equal
deliveries are audited ``stale`` and dropped. The accepted status is durable before IFS is written, so a write that
fails is retried from the store (with backoff) even after the poll moved on. For each linked issue whose status
differs from what IFS last got: map it, read ETags for the whole batch in one filtered request, PATCH with
``If-Match``; on 412 read again and re-apply, a bounded number of times. Never ``If-Match: *``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine.failures import FailureDecision, decide, is_systemic
from ml_connector.engine.locks import FlowBusy, flow_lock
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import format_ts, parse_ts
from ml_connector.errors import AuthError, ConcurrencyConflict, NotFound, TransientError, Unavailable
from ml_connector.http.session import may_have_acted
from ml_connector.ifs.odata import Key
from ml_connector.jira import jql
from ml_connector.jira.webhooks import changelog_id
from ml_connector.mapping import IfsUpdate, map_status
from ml_connector.store import PARKED, AuditEvent, RecordRow, Store, utcnow

log = structlog.get_logger("ml_connector.engine")

ISSUE_FIELDS = ("status", "updated")

# Where a change came from: a poll (a fresh read of the issue), a webhook delivery, or the store's own pending status.
POLL, WEBHOOK, PENDING = "poll", "webhook", "pending"
# Where a change stands against the newest one the store accepted for its issue.
NEWER, SAME, OLDER = "newer", "same", "older"
WB_ERROR = "write-back: "
LEGACY_READS_PER_RUN = 100

# One applier at a time: the web inbox thread, a scheduled poll and a CLI sync never interleave their IFS writes on
# one record (else an older status could land after a newer one while the store believes the newer). In-process a
# lock, across processes a store lease; a waiter gives up after APPLY_WAIT seconds (the events stay pending).
_APPLY_LOCK = threading.RLock()
APPLY_LEASE = "write-back"
APPLY_WAIT = 120.0


@contextmanager
def _one_applier(store: Store, stop: threading.Event) -> Iterator[None]:
    deadline = time.monotonic() + APPLY_WAIT
    with _APPLY_LOCK:
        while True:
            lease = flow_lock(store, APPLY_LEASE)
            try:
                lease.__enter__()
                break
            except FlowBusy:
                if stop.is_set() or time.monotonic() > deadline:
                    raise FlowBusy("another process is writing Jira statuses to IFS; try again later") from None
                stop.wait(0.05)
        try:
            yield
        finally:
            lease.__exit__(None, None, None)


@dataclass(frozen=True)
class StatusChange:
    """A Jira issue's status as seen by polling or a webhook, with the issue's own time of that change."""

    jira_id: str
    jira_key: str | None
    status: str
    category: str | None
    updated: datetime | None = None
    changelog_id: int | None = None
    origin: str = POLL


def change_from_issue(
    issue: Mapping[str, Any], *, changelog: int | None = None, origin: str = POLL
) -> StatusChange | None:
    fields = issue.get("fields") or {}
    status = fields.get("status") or {}
    name = status.get("name") if isinstance(status, Mapping) else None
    if not name:
        return None
    category = (status.get("statusCategory") or {}).get("key")
    return StatusChange(
        str(issue.get("id")),
        issue.get("key"),
        str(name),
        category,
        parse_jira_ts(fields.get("updated")),
        changelog,
        origin,
    )


def change_from_delivery(payload: Mapping[str, Any]) -> StatusChange | None:
    """A webhook delivery's status change, ordered by the issue's ``updated`` and the delivery's changelog id."""
    issue = payload.get("issue")
    if not isinstance(issue, Mapping):
        return None
    return change_from_issue(issue, changelog=changelog_id(payload), origin=WEBHOOK)


def parse_jira_ts(value: Any) -> datetime | None:
    """Jira renders ``2025-01-31T02:00:00.000-0800``; Python wants a colon in the offset. Returned in UTC."""
    if not value:
        return None
    text = str(value)
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = parse_ts(text)
    return parsed.astimezone(UTC) if parsed is not None else None


def place(change: StatusChange, record: RecordRow) -> str:
    """NEWER, SAME or OLDER than the newest change the store accepted for this issue."""
    if record.jira_updated is None:
        return NEWER  # nothing accepted yet
    if change.updated is None:
        return OLDER  # cannot be shown newer; a poll repairs it if it was
    if change.updated != record.jira_updated:
        return NEWER if change.updated > record.jira_updated else OLDER
    # The same millisecond: the changelog id, which grows with every change, decides.
    if change.changelog_id is not None and record.jira_changelog_id is not None:
        if change.changelog_id == record.jira_changelog_id:
            return SAME
        return NEWER if change.changelog_id > record.jira_changelog_id else OLDER
    if change.status == record.jira_status:
        return SAME
    # A poll is a read of the issue as it is now, so it wins a tie; a delivery cannot be shown newer than that read.
    return NEWER if change.changelog_id is None else OLDER


def _rank(change: StatusChange) -> tuple[datetime, int]:
    return (change.updated or datetime.min.replace(tzinfo=UTC), change.changelog_id or -1)


def newest_per_issue(changes: Iterable[StatusChange]) -> tuple[list[StatusChange], list[StatusChange]]:
    """(the newest change of each issue, the ones it supersedes); on a tie the later arrival wins."""
    best: dict[str, StatusChange] = {}
    superseded: list[StatusChange] = []
    for change in changes:
        held = best.get(change.jira_id)
        if held is not None and _rank(change) < _rank(held):
            superseded.append(change)
            continue
        if held is not None:
            superseded.append(held)
        best[change.jira_id] = change
    return list(best.values()), superseded


def _parked_by_writeback(record: RecordRow) -> bool:
    return record.state == PARKED and (record.last_error or "").startswith(WB_ERROR)


def _iso(value: datetime | None) -> str | None:
    return format_ts(value) if value is not None else None


class WritebackSync:
    def __init__(
        self,
        connector: Connector,
        flow: FlowConfig,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.c = connector
        self.clock = clock  # decides when a backed-off write-back is due (tests move it instead of waiting)
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
        with self.c.run_row(report, default_system="jira", stop=self.stop):
            changes, newest = self._poll(report)
            changes += self._legacy(changes, report)
            changes += self._pending(changes)
            self.c.note_contact("jira")
            self.apply(changes, report, dry_run=dry_run)
            if changes:
                self.c.note_contact("ifs")
            if newest is not None and not dry_run and not report.interrupted:
                self.c.store.cursors.set(self.cursor_name, format_ts(newest))
        return report

    def _pending(self, polled: Sequence[StatusChange]) -> list[StatusChange]:
        """Write-backs due for a retry: their accepted Jira status is in the store, so no Jira call is needed.

        This is also the repair path: whenever IFS last got a status other than the newest one accepted (a failed
        write, a race), the next run writes it, however old the issue's ``updated`` is against the poll window.
        """
        seen = {c.jira_id for c in polled}
        return [
            StatusChange(str(r.jira_id), r.jira_key, str(r.jira_status), r.jira_status_category, origin=PENDING)
            for r in self.c.store.records.pending_writebacks(self.flow.name, now=self.clock())
            if r.jira_id and r.jira_id not in seen
        ]

    def _legacy(self, polled: Sequence[StatusChange], report: RunReport) -> list[StatusChange]:
        """Records written back before order marks existed: one fresh read each (bounded per run), so a status a
        stale delivery left in IFS before the upgrade is repaired even when the poll window no longer covers it."""
        seen = {c.jira_id for c in polled}
        changes: list[StatusChange] = []
        for record in self.c.store.records.unordered_writebacks(self.flow.name, limit=LEGACY_READS_PER_RUN):
            if record.jira_id in seen or self.stop.is_set():
                continue
            try:
                issue = self.c.jira.get_issue(str(record.jira_id), fields=ISSUE_FIELDS)
            except Exception as exc:
                if is_systemic(exc):
                    raise
                if isinstance(exc, NotFound | AuthError):
                    continue  # deleted or hidden: the outbound side decides what that means
                log.warning("writeback.repair_read_failed", flow=self.flow.name, error_class=type(exc).__name__)
                break  # Jira is struggling: the rest are read on a later run
            change = change_from_issue(issue)
            if change is not None:
                changes.append(change)
        if changes:
            report.add("verified", len(changes))
        return changes

    def _projects(self) -> list[str]:
        linked = self.c.store.records.linked_projects(self.flow.name)
        if self.flow.mapping.project.default:
            linked.add(self.flow.mapping.project.default)
        linked.update(self.flow.mapping.project.map.values())
        return sorted(linked)

    def _poll(self, report: RunReport) -> tuple[list[StatusChange], datetime | None]:
        signpost = utcnow()
        cursor = parse_ts(self.c.store.cursors.get(self.cursor_name))
        if cursor is None:
            first = self.c.store.records.list(flow=self.flow.name, limit=1)
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

    def apply(self, changes: Sequence[StatusChange], report: RunReport, *, dry_run: bool = False) -> list[StatusChange]:
        """Accept the changes newer than what the store holds, write the statuses IFS does not have yet; returns the
        stale changes (audited and dropped). Records not linked to this flow are ignored."""
        if not changes:
            return []
        if dry_run:
            return self._apply(changes, report, dry_run=True)
        with _one_applier(self.c.store, self.stop):
            return self._apply(changes, report, dry_run=False)

    def _apply(self, changes: Sequence[StatusChange], report: RunReport, *, dry_run: bool) -> list[StatusChange]:
        newest, superseded = newest_per_issue(changes)
        records = {
            jira_id: r
            for jira_id, r in self.c.store.records.by_jira_ids(c.jira_id for c in changes).items()
            if r.flow == self.flow.name
        }
        stale = [(records[c.jira_id], c) for c in superseded if c.origin == WEBHOOK and c.jira_id in records]
        accepted: list[tuple[RecordRow, StatusChange]] = []
        todo: list[tuple[RecordRow, StatusChange, IfsUpdate]] = []
        broken: list[tuple[RecordRow, Exception]] = []
        now = self.clock()
        for change in newest:
            record = records.get(change.jira_id)
            if record is None:
                continue
            where = NEWER if change.origin == PENDING else place(change, record)
            if where == OLDER or (where == SAME and change.origin == WEBHOOK):
                stale.append((record, change))  # a late or replayed delivery (or a poll read before it)
                continue
            if change.jira_key and change.jira_key != record.jira_key and not dry_run:
                self._note_key(record, change.jira_key, report)  # never from a stale change: it may predate a move
            if where == NEWER and change.origin != PENDING:
                accepted.append((record, change))
            try:
                update = self._plan(record, change, now, report)
            except Exception as exc:  # a mapping error (or a bug) is this record's failure, not the run's
                if is_systemic(exc):
                    raise
                broken.append((record, exc))
                continue
            if update is not None:
                todo.append((record, change, update))
        if stale:
            report.add("stale", len(stale))
        if dry_run:
            report.add("would_write_back", len(todo))
            return [c for _, c in stale]
        self._accept(accepted, stale, report)
        for record, error in broken:
            self._failed(record, error, report)
        for start in range(0, len(todo), 200):
            if self.stop.is_set():
                report.interrupted = True
                break
            self._write_batch(todo[start : start + 200], report)
        return [c for _, c in stale]

    def _plan(self, record: RecordRow, change: StatusChange, now: datetime, report: RunReport) -> IfsUpdate | None:
        """The IFS write ``change`` needs now, or None (already there, not written back, or waiting)."""
        if record.written_status == change.status:
            return None  # already in IFS: the overlap of polling, or our own echo
        if record.written_status is None and change.category == "new" and not self.wb.initial:
            return None  # a new issue nobody has moved yet (or moved back): nothing to tell IFS
        if _parked_by_writeback(record):
            report.add("held")  # parked: written again after a replay
            return None
        due = record.writeback_next_attempt_at
        if due is not None and due > now:
            report.add("waiting")  # backing off after a failure; the status is kept and written when due
            return None
        return map_status(
            self.wb, status=change.status, category=change.category, jira_key=change.jira_key or record.jira_key
        )

    def _accept(
        self,
        accepted: Sequence[tuple[RecordRow, StatusChange]],
        stale: Sequence[tuple[RecordRow, StatusChange]],
        report: RunReport,
    ) -> None:
        """Durable first: the newest status and its order marks, before IFS is written (a failed write retries from
        here); stale changes are audited in the same transaction."""
        if not accepted and not stale:
            return
        with self.c.store.transaction(report.run_id) as tx:
            for record, change in accepted:
                values: dict[str, Any] = {
                    "jira_status": change.status,
                    "jira_status_category": change.category,
                    "jira_updated": change.updated,
                    "jira_changelog_id": change.changelog_id,
                }
                if record.written_status == change.status:  # nothing left to write: drop any backoff with it
                    values.update(writeback_attempts=0, writeback_next_attempt_at=None)
                tx.records.update(record.id, **values)
                record.jira_status, record.jira_status_category = change.status, change.category
                record.jira_updated, record.jira_changelog_id = change.updated, change.changelog_id
            tx.audit.add_many([(record.id, self._stale_event(record, change)) for record, change in stale])

    @staticmethod
    def _stale_event(record: RecordRow, change: StatusChange) -> AuditEvent:
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

    def _note_key(self, record: RecordRow, new_key: str, report: RunReport) -> None:
        with self.c.store.transaction(report.run_id) as tx:
            tx.records.update(record.id, jira_key=new_key)
            tx.audit.add(
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
        try:
            current = self.c.ifs.get_many_by_keys(self.entity_set, keys, select=[self.flow.key, *written])
        except Exception as exc:
            if is_systemic(exc):
                raise
            if isinstance(exc, TransientError) or len(batch) == 1:
                for record, _, _ in batch:  # IFS is down: every record waits its backoff, one in-call budget spent
                    self._failed(record, exc, report)
                return
            log.warning("writeback.batch_read_refused", flow=self.flow.name, error_class=type(exc).__name__)
            current = {}  # one record may spoil a batch read: each reads its own below
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
                    self._act(record, key, update.action, etag, report)
                break
            except ConcurrencyConflict as exc:
                conflicts += 1
                self._conflict(record, exc, conflicts, report)
                if conflicts > self.policy.writeback_conflict_retries:
                    busy = Unavailable(
                        f"IFS record kept changing between read and write ({conflicts} times 412)",
                        system="ifs",
                        status=412,
                    )
                    self._failed(record, busy, report)
                    return
                found = None
            except Exception as exc:  # record isolation: anything but a systemic error is this record's failure
                if is_systemic(exc):
                    raise
                self._failed(record, exc, report)
                return
        self._written(record, change, update, conflicts, report)

    def _act(self, record: RecordRow, key: Key, action: str, etag: str, report: RunReport) -> None:
        """Call a bound action. When its answer is lost (the call may have acted: a reset after sending, a cut or
        malformed body, a timeout), read the entity again: a new ETag means IFS changed it, so the action is taken as
        applied rather than called again (a second call would be refused for the state it is now in)."""
        try:
            self.c.ifs.call_action(self.entity_set, key, action, etag)
        except TransientError as exc:
            if not may_have_acted(exc):
                raise
            try:
                _row, now_etag = self.c.ifs.get(self.entity_set, key)
            except TransientError:
                raise exc from None
            if now_etag == etag:
                raise  # unchanged: it did not act; the retry calls it again
            with self.c.store.transaction(report.run_id) as tx:
                tx.audit.add(
                    record.id,
                    AuditEvent(
                        "written_back",
                        "warning",
                        f"the answer to {action} was lost ({type(exc).__name__}); IFS changed the record since "
                        "(new ETag), so the action is taken as applied",
                    ),
                )

    def _conflict(self, record: RecordRow, exc: ConcurrencyConflict, conflicts: int, report: RunReport) -> None:
        with self.c.store.transaction(report.run_id) as tx:
            tx.audit.add(
                record.id,
                AuditEvent(
                    "conflict",
                    "warning",
                    f"IFS record changed between read and write (412); re-reading (attempt {conflicts})",
                    {"error": str(exc)},
                ),
            )
        report.add("conflicts")

    def _written(
        self, record: RecordRow, change: StatusChange, update: IfsUpdate, conflicts: int, report: RunReport
    ) -> None:
        # Only what IFS got: jira_status stays the newest accepted, so if a newer status arrived meanwhile the two
        # differ and the next run writes it.
        values: dict[str, Any] = {"written_status": change.status, "writeback_attempts": 0}
        values["writeback_next_attempt_at"] = None
        if (record.last_error or "").startswith(WB_ERROR):
            values.update(error_class=None, last_error=None)
        with self.c.store.transaction(report.run_id) as tx:
            tx.records.update(record.id, **values)
            tx.audit.add(
                record.id,
                AuditEvent(
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
                ),
            )
        report.add("written_back")

    def _decide(self, error: BaseException, attempts_so_far: int, now: datetime) -> FailureDecision:
        """The shared failure policy (DESIGN §4.3): the error class alone decides."""
        return decide(error, attempts_so_far=attempts_so_far, policy=self.policy, now=now)

    def _failed(self, record: RecordRow, error: BaseException, report: RunReport) -> None:
        # The outbound state of the record is untouched unless the write-back is parked; the accepted status stays in
        # the store (jira_status differs from written_status), so the run after ``writeback_next_attempt_at`` retries.
        now = self.clock()
        decision = self._decide(error, record.writeback_attempts, now)
        parked = decision.state == PARKED
        values: dict[str, Any] = {
            "error_class": decision.error_class,
            "last_error": f"{WB_ERROR}{decision.message}",
            "writeback_attempts": decision.attempts,
            "writeback_next_attempt_at": decision.next_attempt_at,
        }
        if parked:
            values["state"] = PARKED
        retry_in = (decision.next_attempt_at - now).total_seconds() if decision.next_attempt_at else None
        with self.c.store.transaction(report.run_id) as tx:
            tx.records.update(record.id, **values)
            tx.audit.add(
                record.id,
                AuditEvent(
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
                ),
            )
        record.writeback_attempts = decision.attempts
        record.writeback_next_attempt_at = decision.next_attempt_at
        report.add_failure(decision)


def process_inbox(connector: Connector, *, limit: int = 500, stop: threading.Event | None = None) -> RunReport:
    """Apply pending webhook events through the same write path as polling; stale ones end as ``stale``."""
    store = connector.store
    report = RunReport("*", "webhook")
    events = store.inbox.pending(limit=limit)
    if not events:
        return report
    by_flow: dict[str, list[StatusChange]] = {}
    event_of: dict[int, int] = {}  # id(change) -> inbox row id
    ignored: list[int] = []
    records = store.records.by_jira_ids(str(e["issue_id"]) for e in events if e.get("issue_id"))
    writing = {f.name for f in connector.config.flows if f.enabled and f.writeback.enabled}
    for event in events:
        change = change_from_delivery(event.get("payload") or {})
        record = records.get(str(event.get("issue_id")))
        if change is None or record is None or record.flow not in writing or event.get("event") == "jira:issue_deleted":
            ignored.append(int(event["id"]))
            continue
        by_flow.setdefault(record.flow, []).append(change)
        event_of[id(change)] = int(event["id"])
    stale: set[int] = set()
    for flow_name, changes in by_flow.items():
        flow = connector.config.flow(flow_name)
        dropped = WritebackSync(connector, flow, stop=stop).apply(changes, report)
        stale.update(event_of[id(c)] for c in dropped)
    # Every event is now accepted (durably, before any IFS write) or stale, even when a stop cut the writes short:
    # a status not yet in IFS is pending in the store and the next run writes it.
    store.inbox.mark(ignored, "ignored")
    store.inbox.mark(sorted(stale), "stale")
    store.inbox.mark(sorted(set(event_of.values()) - stale), "processed")
    report.add("events", len(events))
    return report
