"""Order, not arrival (pure): which change of an issue wins, and which ones are stale.

A change is accepted only when it is newer than the newest one the store accepted for the issue: the issue's
``updated`` first, then the changelog id, which grows with every change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from ml_connector.engine.writeback.changes import PENDING, WEBHOOK, StatusChange
from ml_connector.store import RecordRow

# Where a change stands against the newest one the store accepted for its issue.
Placement = Literal["newer", "same", "older"]
NEWER: Final = "newer"
SAME: Final = "same"
OLDER: Final = "older"


def place(change: StatusChange, record: RecordRow) -> Placement:
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


def is_stale(change: StatusChange, where: Placement) -> bool:
    """An older change, or a delivery of the one already accepted (a late or replayed delivery, or one a poll read
    before it arrived). A poll of the same change is not stale: it is the overlap, and may still need writing."""
    return where == OLDER or (where == SAME and change.origin == WEBHOOK)


@dataclass(frozen=True)
class SortedChanges:
    """A batch of changes against the store: the live one of each linked issue, and the stale ones to audit."""

    live: list[Live]
    stale: list[tuple[RecordRow, StatusChange]]


@dataclass(frozen=True)
class Live:
    """The newest change of a linked issue that is not stale; ``accept`` when the store must record it as newest."""

    record: RecordRow
    change: StatusChange
    accept: bool


def sort_changes(changes: Sequence[StatusChange], records: Mapping[str, RecordRow]) -> SortedChanges:
    """Split ``changes`` by the order rule; changes of issues not in ``records`` (not linked) are left out.

    A pending change is the store's own accepted status, so it is always live and never accepted again. A superseded
    poll or pending change is dropped silently: only deliveries are audited as stale.
    """
    newest, superseded = newest_per_issue(changes)
    stale = [(records[c.jira_id], c) for c in superseded if c.origin == WEBHOOK and c.jira_id in records]
    live: list[Live] = []
    for change in newest:
        record = records.get(change.jira_id)
        if record is None:
            continue
        where = NEWER if change.origin == PENDING else place(change, record)
        if is_stale(change, where):
            stale.append((record, change))
            continue
        live.append(Live(record, change, accept=where == NEWER and change.origin != PENDING))
    return SortedChanges(live, stale)
