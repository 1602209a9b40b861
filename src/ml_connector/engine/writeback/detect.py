"""Finding the Jira status changes a run must consider: a JQL poll since the cursor, one fresh read of each record
written back before order marks existed, and the store's pending write-backs (the retry and repair path)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from ml_connector.config.models import FlowConfig, ValueMap
from ml_connector.engine.failures import is_systemic
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import parse_ts
from ml_connector.engine.writeback.changes import ISSUE_FIELDS, PENDING, StatusChange, change_from_issue
from ml_connector.errors import AuthError, NotFound, Rejected
from ml_connector.jira import jql
from ml_connector.store import RecordRow, utcnow

log = structlog.get_logger("ml_connector.engine")

LEGACY_READS_PER_RUN = 100
POLL_PAGE_SIZE = 100


def projects_to_poll(linked: Iterable[str], project: ValueMap) -> list[str]:
    """The projects the flow's issues are in now, and every project the mapping may create one in."""
    projects = set(linked)
    if project.default:
        projects.add(project.default)
    projects.update(project.map.values())
    return sorted(projects)


def poll_mark(changes: Iterable[StatusChange], signpost: datetime) -> datetime | None:
    """The cursor a poll may move to: its newest ``updated``, never past ``signpost`` (the poll's start), so that a
    clock skew ahead of ours does not skip changes.

    Search is eventually consistent: a change older than this mark may not have been searchable yet. The next poll
    reads from the mark less the look-back, so the look-back must cover the search lag (docs/configuration.md)."""
    newest = max((c.updated for c in changes if c.updated is not None), default=None)
    return min(newest, signpost) if newest is not None else None


@dataclass(frozen=True)
class WindowQueries:
    """The JQL of a poll window: all of it oldest first, all of it newest first, and its status changes."""

    whole: str
    newest: str
    moved: str


def window_queries(projects: Sequence[str], updated_since: str, status_changed_since: str) -> WindowQueries:
    """The window's queries from its two bounds (``updated >=`` and ``status CHANGED AFTER``, both in Jira's zone).

    The status changes are searched within the updated window: a transition updates the issue, so the window holds
    every issue whose status changed since its start."""
    window = jql.all_of(jql.in_("project", projects), updated_since)
    return WindowQueries(
        whole=jql.order_by(window, "updated ASC"),
        newest=jql.order_by(window, "updated DESC"),
        moved=jql.order_by(jql.all_of(window, status_changed_since), "updated ASC"),
    )


def merge_issues(first: Iterable[Mapping[str, Any]], more: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issues of two reads of one window, each once (the later read of an issue wins: it is as fresh)."""
    by_id: dict[str, dict[str, Any]] = {}
    for issue in (*first, *more):
        by_id[str(issue.get("id"))] = dict(issue)
    return list(by_id.values())


def pending_change(record: RecordRow) -> StatusChange:
    """A record's accepted status, not yet in IFS, as a change to apply again."""
    return StatusChange(
        str(record.jira_id), record.jira_key, str(record.jira_status), record.jira_status_category, origin=PENDING
    )


@dataclass
class ChangeDetector:
    connector: Connector
    flow: FlowConfig
    stop: threading.Event

    @property
    def cursor_name(self) -> str:
        return f"{self.flow.name}:writeback"

    def poll(self, report: RunReport) -> tuple[list[StatusChange], datetime | None]:
        """The issues updated since the cursor (less the lookback), and where the cursor may move to."""
        signpost = utcnow()
        since = self._since()
        if since is None:
            return [], None
        projects = projects_to_poll(
            self.connector.store.records.linked_projects(self.flow.name), self.flow.mapping.project
        )
        if not projects:
            return [], None
        issues = self._read_window(projects, since)
        changes = [c for c in map(change_from_issue, issues) if c is not None]
        report.add("polled", len(changes))
        return changes, poll_mark(changes, signpost)

    def _read_window(self, projects: Sequence[str], since: datetime) -> list[dict[str, Any]]:
        """The issues of the window whose status may need writing: all of them when the window is one page.

        A window of more pages is mostly a backfill or a bulk edit: the connector's own creates and edits, which
        never change a status, and only a status change can need writing. So its newest page is read (it gives the
        cursor its mark in Jira's clock), then only the issues whose status changed in the window (``status CHANGED
        AFTER`` its start, a history search): a person's transition is among them, whoever created the issue and
        however soon after. With ``initial`` every new
        issue's first status is written, so the whole window is read.
        """
        jira = self.connector.jira
        queries = window_queries(projects, jira.updated_since_clause(since), jira.status_changed_since_clause(since))
        if self.flow.writeback.initial:
            return list(jira.search(queries.whole, fields=ISSUE_FIELDS, page_size=POLL_PAGE_SIZE))
        newest, more = jira.first_page(queries.newest, fields=ISSUE_FIELDS, page_size=POLL_PAGE_SIZE)
        if not more:
            return newest
        try:
            moved = list(jira.search(queries.moved, fields=ISSUE_FIELDS, page_size=POLL_PAGE_SIZE))
        except Rejected as exc:
            if exc.status != 400:
                raise
            # The window itself was accepted a moment ago, so the history clause is what this site refuses:
            # read the whole window as before it existed (correct, only dearer).
            log.warning("writeback.history_search_refused", flow=self.flow.name, error=str(exc))
            return list(jira.search(queries.whole, fields=ISSUE_FIELDS, page_size=POLL_PAGE_SIZE))
        return merge_issues(newest, moved)

    def _since(self) -> datetime | None:
        """The cursor less the lookback; the first run starts from the flow's first record (None: no records)."""
        store = self.connector.store
        cursor = parse_ts(store.cursors.get(self.cursor_name))
        if cursor is None:
            first = store.records.list(flow=self.flow.name, limit=1)
            if not first:
                return None
            assert first[0].created_at is not None
            cursor = first[0].created_at
        return cursor - timedelta(seconds=self.flow.writeback.lookback)

    def pending(self, polled: Sequence[StatusChange], now: datetime) -> list[StatusChange]:
        """Write-backs due for a retry: their accepted Jira status is in the store, so no Jira call is needed.

        This is also the repair path: whenever IFS last got a status other than the newest one accepted (a failed
        write, a race), the next run writes it, however old the issue's ``updated`` is against the poll window.
        """
        seen = {c.jira_id for c in polled}
        return [
            pending_change(r)
            for r in self.connector.store.records.pending_writebacks(self.flow.name, now=now)
            if r.jira_id and r.jira_id not in seen
        ]

    def legacy(self, polled: Sequence[StatusChange], report: RunReport) -> list[StatusChange]:
        """Records written back before order marks existed: one fresh read each (bounded per run), so a status a
        stale delivery left in IFS before the upgrade is repaired even when the poll window no longer covers it."""
        seen = {c.jira_id for c in polled}
        changes: list[StatusChange] = []
        for record in self.connector.store.records.unordered_writebacks(self.flow.name, limit=LEGACY_READS_PER_RUN):
            if record.jira_id in seen or self.stop.is_set():
                continue
            try:
                issue = self.connector.jira.get_issue(str(record.jira_id), fields=ISSUE_FIELDS)
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
