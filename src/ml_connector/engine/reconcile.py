"""Reconciliation: what an interrupted create may have made in Jira, and whether a 404'd issue is really gone.

Both search Jira by the record's identity label. A 404 is confirmed only on a later run (two reads, no issue carries
the label); a run in which too many issues answer 404 raises an alert and recreates nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from ml_connector import reasons
from ml_connector.engine.commit import NO_FAILURE, SYNCED_CLEAN, RunScope
from ml_connector.engine.plan import NOT_FOUND
from ml_connector.engine.ports import JiraWiring, RecordTx
from ml_connector.errors import NotFound
from ml_connector.jira import jql
from ml_connector.mapping import IDENTITY_PROPERTY, identity_label
from ml_connector.store import ORPHANED, PENDING_CREATE, PENDING_UPDATE, RETRY, AuditEvent, RecordRow, utcnow

log = structlog.get_logger("ml_connector.engine")

SEARCH_LABELS = 50  # identity labels per reconciliation search (one JQL ``labels in (...)``)
_NO_REASON = {"error_class": None, "reason": None, "reason_value": None}
NOT_FOUND_ALERT_MIN = 5  # 404s a run must see before sync.max_not_found_share can raise the alert
Audits = list[tuple[int, AuditEvent]]


@dataclass
class NotFoundWatch:
    """Per run: records whose issue was edited or read, those that answered 404, and those first seen 404 in this
    run (a 404 is confirmed only on a later run). Sets: a record edited twice in a run counts once."""

    edited: set[int] = field(default_factory=set)
    not_found: set[int] = field(default_factory=set)
    suspected: set[int] = field(default_factory=set)
    alert: bool = False

    def alert_text(self, max_share: float) -> str:
        return (
            f"{len(self.not_found)} of {len(self.edited | self.not_found)} Jira issues edited or read in this run "
            f"answered 404 (limit {max_share:.0%}); recreating is suspended: check the connector user's permissions "
            "and archived projects"
        )


class Reconciler:
    """Searches and second reads for one run of one flow."""

    def __init__(self, wiring: JiraWiring, scope: RunScope, watch: NotFoundWatch, stop: threading.Event) -> None:
        self.wiring = wiring
        self.scope = scope
        self.policy = scope.policy
        self.watch = watch
        self.stop = stop

    def _rows(self, ids: Sequence[int]) -> list[RecordRow]:
        return self.wiring.store.records.by_ids(list(ids))

    # ------------------------------------------------------------------------------------ interrupted creates

    def interrupted_creates(
        self, records: Sequence[RecordRow], now: datetime
    ) -> tuple[list[RecordRow], list[RecordRow]]:
        """Earlier creates may have reached Jira: returns (linked to what they made and needing an edit, confirmed
        absent: create again). An issue made from the record's current draft is linked as ``synced``, no edit.

        The rest are deferred (search may lag) or, when the run is stopped, left untouched with their intent for the
        next run."""
        report = self.scope.report
        found = self.find_by_identity(records)
        linked: list[int] = []
        absent: list[RecordRow] = []
        audits: Audits = []
        synced = 0
        with self.wiring.store.transaction(report.run_id) as tx:
            for record in records:
                issues = found.get(record.id)
                if issues is None:
                    continue  # not searched before a stop: the intent stays for the next run
                if issues:
                    current = _link_created(tx, record, issues, audits)
                    synced += current
                    if not current:
                        linked.append(record.id)
                elif self._defer_unconfirmed(tx, record, now, audits):
                    report.add("deferred")
                else:
                    absent.append(record)
            tx.audit.add_many(audits)
        report.add("reconciled", len(linked) + synced)
        if len(found) < len(records):
            report.interrupted = True
        return self._rows(linked), [_without_intent(r) for r in absent]

    def _defer_unconfirmed(self, tx: RecordTx, record: RecordRow, now: datetime, audits: Audits) -> bool:
        """No issue found. True when it is too early to believe that (search may lag behind the create); otherwise
        the intent is dropped and the record is created again. The settle counts from the start of the attempt, so
        it must cover the search lag plus the time the create may have spent on the wire (docs/configuration.md);
        ``reconcileIssues`` cannot shorten it: the ids an interrupted create made are unknown."""
        assert record.create_attempted_at is not None
        settle = timedelta(seconds=self.policy.reconcile_settle)
        if now - record.create_attempted_at < settle:
            tx.records.update(record.id, next_attempt_at=record.create_attempted_at + settle)
            message = "create unconfirmed and search may lag; checking again later"
            audits.append((record.id, AuditEvent("retried", "warning", message)))
            return True
        tx.records.update(record.id, create_attempted_at=None)
        audits.append((record.id, AuditEvent("reconciled", message="no issue from the interrupted create; creating")))
        return False

    def find_by_identity(self, records: Sequence[RecordRow]) -> dict[int, list[dict[str, Any]]]:
        """Jira issues carrying each record's identity label, oldest first: one ``labels in (...)`` search per 50
        records, a few in flight at once. Records not searched (the run was stopped) are absent from the answer.

        An issue counts for a record when its identity property names that record, or is missing (a create that
        failed half-way may have set the label without the property)."""
        flow = self.scope.flow.name
        by_label = {identity_label(flow, r.ifs_key): r for r in records}
        labels = list(by_label)
        chunks = [labels[i : i + SEARCH_LABELS] for i in range(0, len(labels), SEARCH_LABELS)]

        def search(chunk: list[str]) -> list[dict[str, Any]] | None:
            if self.stop.is_set():
                return None
            jira = self.wiring.jira
            return list(jira.search(jql.in_("labels", chunk), fields=("labels",), properties=(IDENTITY_PROPERTY,)))

        workers = max(1, min(self.policy.bulk_concurrency, len(chunks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlc-reconcile") as pool:
            answers = list(pool.map(search, chunks))
        found: dict[int, list[dict[str, Any]]] = {}
        for chunk, issues in zip(chunks, answers, strict=True):
            if issues is not None:
                found.update(_issues_by_record(flow, chunk, issues, by_label))
        for issues in found.values():
            issues.sort(key=lambda i: int(i["id"]))
        return found

    # ------------------------------------------------------------------------------------ 404s

    def deleted(self, record: RecordRow) -> None:
        """An edit answered 404: the issue was deleted, or the connector can no longer see it (a permission scheme
        change, an archived project, a glitch). One 404 proves neither, so nothing is recreated now: the record waits
        for a later run, after ``deleted_issue_grace``, where :meth:`confirm_missing` reads again and searches."""
        report, watch = self.scope.report, self.watch
        first = record.id not in watch.suspected
        watch.not_found.add(record.id)
        watch.suspected.add(record.id)
        alert = self.check_not_found_share()
        grace = self.policy.deleted_issue_grace
        confirm_after = utcnow() + timedelta(seconds=grace)
        message = f"Jira answered 404 for {record.jira_key}; confirming on a later run (after {grace:g} s)"
        with self.wiring.store.transaction(report.run_id) as tx:
            tx.records.update(
                record.id,
                state=RETRY,
                next_attempt_at=confirm_after,
                error_class=NOT_FOUND,
                last_error=message,
                reason=reasons.NOT_FOUND,
                reason_value="jira",
            )
            detail = {"jira_id": record.jira_id, "jira_key": record.jira_key}
            detail["confirm_after"] = confirm_after.isoformat()
            if alert:
                detail["alert"] = watch.alert_text(self.policy.max_not_found_share)
            if first:
                tx.audit.add(record.id, AuditEvent("not_found", "warning", message, detail))
        if first:
            report.add("not_found")

    def confirm_missing(self, records: Sequence[RecordRow]) -> tuple[list[RecordRow], list[RecordRow]]:
        """Records whose issue answered 404 on an earlier run: (still there: edit it, gone: create it again).

        Still there means the identity-label search finds it (relinked when it moved to another id) or a second read
        of its id succeeds. Gone needs both to fail, the deletion policy to be ``recreate`` and the run not to be in a
        404 alert; otherwise the record is left orphaned (policy) or waits for a later run (alert, stop)."""
        records = [r for r in records if r.id not in self.watch.suspected]  # the 404 came in this run: not yet
        if not records:
            return [], []
        relinked, visible, gone = self._sort_missing(records)
        recreate = self.policy.deleted_issue == "recreate" and not self.watch.alert
        with self.wiring.store.transaction(self.scope.report.run_id) as tx:
            for record, issue in relinked:
                _relink(tx, record, issue)
            for record in visible:
                tx.records.update(record.id, state=PENDING_UPDATE, next_attempt_at=None, **_NO_REASON)
                tx.audit.add(record.id, AuditEvent("found", message=f"Jira issue {record.jira_key} is readable again"))
            for record in gone:
                self._gone(tx, record, recreate=recreate)
        ids = [r.id for r, _ in relinked] + [r.id for r in visible]
        return self._rows(ids), self._rows([r.id for r in gone]) if recreate else []

    def _sort_missing(
        self, records: Sequence[RecordRow]
    ) -> tuple[list[tuple[RecordRow, dict[str, Any]]], list[RecordRow], list[RecordRow]]:
        """(found by the search, readable again, gone); records not searched (a stop) are in none."""
        found = self.find_by_identity(records)
        relinked: list[tuple[RecordRow, dict[str, Any]]] = []
        visible: list[RecordRow] = []
        gone: list[RecordRow] = []
        for record in records:
            if record.id not in found or self.stop.is_set():
                continue
            issues = found[record.id]
            if issues:
                same = [i for i in issues if str(i["id"]) == record.jira_id]
                relinked.append((record, (same or issues)[0]))
            elif self.watch.alert:
                gone.append(record)  # no second read: nothing will be recreated in this run anyway
            elif self._read_again(record):
                visible.append(record)
            else:
                gone.append(record)
        return relinked, visible, gone

    def _read_again(self, record: RecordRow) -> bool:
        """The second read of a 404'd issue: True when Jira shows it again."""
        assert record.jira_id is not None
        self.watch.edited.add(record.id)
        try:
            self.wiring.jira.get_issue(record.jira_id, fields=("labels",))
        except NotFound:
            self.watch.not_found.add(record.id)
            self.check_not_found_share()
            return False
        return True

    def _gone(self, tx: RecordTx, record: RecordRow, *, recreate: bool) -> None:
        """A confirmed 404 (two reads on two runs, no issue carries its label): act per policy, unless alerted."""
        report = self.scope.report
        if self.watch.alert:
            confirm_after = utcnow() + timedelta(seconds=self.policy.deleted_issue_grace)
            tx.records.update(record.id, next_attempt_at=confirm_after)
            message = f"Jira issue {record.jira_key} still answers 404; not recreated while the flow is alerted"
            alert = self.watch.alert_text(self.policy.max_not_found_share)
            detail = {"alert": alert, "confirm_after": confirm_after.isoformat()}
            tx.audit.add(record.id, AuditEvent("not_found", "warning", message, detail))
            report.add("not_found")
        elif recreate:
            unlinked = {"jira_id": None, "jira_key": None, "create_attempted_at": None}
            tx.records.update(record.id, state=PENDING_CREATE, **unlinked, **NO_FAILURE)
            message = f"Jira issue {record.jira_key} was deleted; recreating (policy)"
            tx.audit.add(record.id, AuditEvent("deleted", "warning", message))
            report.add("recreate")
        else:
            tx.records.update(record.id, state=ORPHANED, next_attempt_at=None)
            message = f"Jira issue {record.jira_key} was deleted; left deleted (policy)"
            tx.audit.add(record.id, AuditEvent("deleted", "warning", message))
            report.add("orphaned")

    def check_not_found_share(self) -> bool:
        """Raise the run's 404 alert (once) when too many of its issue reads and edits answered 404."""
        policy, watch = self.policy, self.watch
        missing, edited = len(watch.not_found), len(watch.edited | watch.not_found)
        if not watch.alert and (missing >= NOT_FOUND_ALERT_MIN and missing > policy.max_not_found_share * edited):
            watch.alert = True
            self.scope.report.add("not_found_alert")
            log.warning("flow.not_found_alert", flow=self.scope.flow.name, not_found=missing, edited=edited)
        return watch.alert


def _link_created(tx: RecordTx, record: RecordRow, issues: Sequence[Mapping[str, Any]], audits: Audits) -> bool:
    """Link ``record`` to the oldest issue an interrupted create made; True when that issue is current (made from
    the record's current draft, the hash it carries): no edit needed."""
    issue = issues[0]
    current = record.draft_hash is not None and _identity(issue).get("draft") == record.draft_hash
    values: dict[str, Any] = {
        "jira_id": str(issue["id"]),
        "jira_key": str(issue["key"]),
        "state": PENDING_UPDATE,
        "create_attempted_at": None,
    }
    if current:
        values.update(SYNCED_CLEAN)
    tx.records.update(record.id, **values)
    message = "found the issue an interrupted create had made; linked instead of creating again"
    message += " (its content is current)" if current else " (sending the current content)"
    if len(issues) > 1:
        message += f" (also found {', '.join(str(i['key']) for i in issues[1:])}: duplicates to review)"
    detail = {"jira_id": issue["id"], "jira_key": issue["key"]}
    audits.append((record.id, AuditEvent("reconciled", "warning" if len(issues) > 1 else "ok", message, detail)))
    return current


def _relink(tx: RecordTx, record: RecordRow, issue: Mapping[str, Any]) -> None:
    moved = str(issue["id"]) != record.jira_id
    message = (
        f"issue {record.jira_key} answered 404 but the identity search found {issue['key']}; relinked"
        if moved
        else f"issue {record.jira_key} answered 404 but the identity search still finds it; editing again"
    )
    link = {"jira_id": str(issue["id"]), "jira_key": str(issue["key"])}
    tx.records.update(record.id, **link, state=PENDING_UPDATE, next_attempt_at=None, **_NO_REASON)
    detail = {"jira_id": issue["id"], "jira_key": issue["key"]}
    tx.audit.add(record.id, AuditEvent("reconciled", "warning" if moved else "ok", message, detail))


def _issues_by_record(
    flow: str, chunk: Sequence[str], issues: Sequence[dict[str, Any]], by_label: Mapping[str, RecordRow]
) -> dict[int, list[dict[str, Any]]]:
    """One search's answer per record of ``chunk`` (every searched record gets an entry, maybe empty)."""
    found: dict[int, list[dict[str, Any]]] = {by_label[label].id: [] for label in chunk}
    for issue in issues:
        identity = _identity(issue)
        for label in (issue.get("fields") or {}).get("labels") or ():
            record = by_label.get(label)
            if record is None or identity.get("key", record.ifs_key) != record.ifs_key:
                continue
            if identity.get("flow", flow) == flow:
                found[record.id].append(issue)
    return found


def _identity(issue: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's ``ml-connector`` property as a search returned it ({} when missing or malformed)."""
    value = (issue.get("properties") or {}).get(IDENTITY_PROPERTY)
    return value if isinstance(value, dict) else {}


def _without_intent(record: RecordRow) -> RecordRow:
    return replace(record, create_attempted_at=None)
