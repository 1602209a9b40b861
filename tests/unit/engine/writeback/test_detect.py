"""The pure parts of finding write-back changes: which projects to poll, where the cursor may move, pending ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml_connector.config.models import ValueMap
from ml_connector.engine.writeback.changes import PENDING, POLL, StatusChange
from ml_connector.engine.writeback.detect import (
    merge_issues,
    pending_change,
    poll_mark,
    projects_to_poll,
    window_queries,
)
from ml_connector.store import SYNCED, RecordRow

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("linked", "project", "expected"),
    [
        (set(), ValueMap(source="x"), []),
        ({"PROC"}, ValueMap(source="x"), ["PROC"]),
        ({"MOVED"}, ValueMap(source="x", default="PROC"), ["MOVED", "PROC"]),  # where issues are now, too
        (set(), ValueMap(source="x", map={"a": "OPS", "b": "PROC"}, default="PROC"), ["OPS", "PROC"]),
    ],
)
def test_projects_to_poll(linked: set[str], project: ValueMap, expected: list[str]) -> None:
    assert projects_to_poll(linked, project) == expected


def _at(updated: datetime | None) -> StatusChange:
    return StatusChange("1", "P-1", "Done", "done", updated, None, POLL)


@pytest.mark.parametrize(
    ("updated", "expected"),
    [
        ([], None),
        ([None], None),
        ([T0, None, T0 - timedelta(seconds=5)], T0),
        ([T0 - timedelta(seconds=5), T0 - timedelta(seconds=1)], T0 - timedelta(seconds=1)),
        ([T0 + timedelta(minutes=1)], T0),  # a Jira clock ahead of ours: never past the poll's start
    ],
)
def test_poll_mark(updated: list[datetime | None], expected: datetime | None) -> None:
    assert poll_mark([_at(u) for u in updated], signpost=T0) == expected


def test_pending_change_is_the_accepted_status_without_order_marks() -> None:
    record = RecordRow(
        id=1,
        flow="f",
        ifs_key="PO-1",
        state=SYNCED,
        jira_id="10001",
        jira_key="PROC-1",
        jira_status="Done",
        jira_status_category="done",
        jira_updated=T0,
        jira_changelog_id=9,
    )
    assert pending_change(record) == StatusChange("10001", "PROC-1", "Done", "done", None, None, PENDING)


def test_window_queries_read_newest_first_and_status_changes_within_the_window() -> None:
    queries = window_queries(
        ["MAINT", "PROC"], 'updated >= "2026-03-01 04:00"', 'status CHANGED AFTER "2026-03-01 03:59"'
    )
    window = '(project in ("MAINT", "PROC")) AND (updated >= "2026-03-01 04:00")'
    assert queries.whole == f"{window} ORDER BY updated ASC"
    assert queries.newest == f"{window} ORDER BY updated DESC"  # its first page holds the cursor's mark
    assert queries.moved == (
        '((project in ("MAINT", "PROC")) AND (updated >= "2026-03-01 04:00")) AND '
        '(status CHANGED AFTER "2026-03-01 03:59") ORDER BY updated ASC'
    )


def test_merge_issues_keeps_each_issue_once_and_the_later_read() -> None:
    newest = [{"id": "1", "fields": {"status": {"name": "To Do"}}}, {"id": "2", "fields": {}}]
    moved = [{"id": 1, "fields": {"status": {"name": "Done"}}}, {"id": "3", "fields": {}}]
    merged = merge_issues(newest, moved)
    assert [str(i["id"]) for i in merged] == ["1", "2", "3"]
    assert merged[0]["fields"]["status"]["name"] == "Done"


def test_the_mark_of_a_narrowed_window_is_its_newest_update_never_past_the_poll_start() -> None:
    # The newest page (a backfill's last creates) moves the cursor although no status changed: Jira's own clock.
    newest_page = [_at(T0 - timedelta(seconds=s)) for s in (1, 2, 3)]
    assert poll_mark(newest_page, signpost=T0) == T0 - timedelta(seconds=1)
    assert poll_mark([*newest_page, _at(T0 + timedelta(seconds=30))], signpost=T0) == T0
