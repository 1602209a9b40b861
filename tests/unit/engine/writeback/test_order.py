"""Order, not arrival: how a Jira change is placed against the newest one the store accepted (issue 15, item 2)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.engine.writeback.changes import (
    PENDING,
    POLL,
    WEBHOOK,
    StatusChange,
    change_from_delivery,
    parse_jira_ts,
)
from ml_connector.engine.writeback.order import NEWER, OLDER, SAME, newest_per_issue, place
from ml_connector.jira.webhooks import changelog_id
from ml_connector.store import SYNCED, RecordRow

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _record(updated: datetime | None, changelog: int | None, status: str | None = "In Progress") -> RecordRow:
    return RecordRow(
        id=1,
        flow="purchase_orders",
        ifs_key="PO-1",
        state=SYNCED,
        jira_id="10001",
        jira_status=status,
        jira_updated=updated,
        jira_changelog_id=changelog,
    )


def _change(status: str, updated: datetime | None, changelog: int | None = None, origin: str = WEBHOOK) -> StatusChange:
    return StatusChange("10001", "PROC-1", status, "indeterminate", updated, changelog, origin)


@pytest.mark.parametrize(
    ("stored", "change", "expected"),
    [
        ((None, None), _change("Done", None), NEWER),  # nothing accepted yet
        ((T0, 100), _change("Done", None), OLDER),  # cannot be shown newer
        ((T0, 100), _change("Done", T0 + timedelta(milliseconds=1), 99), NEWER),  # updated decides first
        ((T0, 100), _change("Done", T0 - timedelta(milliseconds=1), 101), OLDER),
        ((T0, 100), _change("Done", T0, 101), NEWER),  # same millisecond: the changelog id decides
        ((T0, 100), _change("Done", T0, 99), OLDER),
        ((T0, 100), _change("In Progress", T0, 100), SAME),  # a replay under a new identifier
        ((T0, None), _change("In Progress", T0, 100), SAME),  # a delivery of what a poll already read
        ((T0, None), _change("Done", T0, 100), OLDER),  # a poll read the issue after every change of that ms
        ((T0, 100), _change("In Progress", T0, origin=POLL), SAME),  # the poll overlap
        ((T0, 100), _change("Done", T0, origin=POLL), NEWER),  # a fresh read wins a same-millisecond tie
        ((T0, 100), _change("Done", T0 - timedelta(seconds=5), origin=POLL), OLDER),  # a late poll result
    ],
)
def test_place(stored: tuple[datetime | None, int | None], change: StatusChange, expected: str) -> None:
    assert place(change, _record(*stored)) == expected


def test_newest_per_issue_orders_by_the_issue_time_not_by_arrival() -> None:
    newer = _change("Awaiting Delivery", T0 + timedelta(seconds=1), 101)
    older = _change("In Progress", T0, 100)
    replay = _change("Awaiting Delivery", T0 + timedelta(seconds=1), 101)
    other = StatusChange("20002", "PROC-2", "Done", "done", T0, 7, WEBHOOK)
    best, superseded = newest_per_issue([newer, older, other, replay])
    assert best == [replay, other]  # on a tie the later arrival is kept: identical content either way
    assert superseded == [older, newer]
    best, superseded = newest_per_issue([older, newer])
    assert best == [newer] and superseded == [older]


def test_pending_changes_keep_their_arrival_order() -> None:
    first = StatusChange("1", None, "A", None, origin=PENDING)
    second = StatusChange("1", None, "B", None, origin=PENDING)
    assert newest_per_issue([first, second]) == ([second], [first])


def test_delivery_fields_are_parsed_from_the_issue_not_the_delivery_time() -> None:
    payload = {
        "timestamp": 1893456000000,  # when Jira sent it: a retry or a replay changes it, so it is ignored
        "webhookEvent": "jira:issue_updated",
        "changelog": {"id": "10234", "items": []},
        "issue": {
            "id": "10001",
            "key": "PROC-1",
            "fields": {
                "updated": "2026-03-01T04:00:00.123-0800",
                "status": {"name": "Done", "statusCategory": {"key": "done"}},
            },
        },
    }
    change = change_from_delivery(payload)
    assert change == StatusChange("10001", "PROC-1", "Done", "done", T0, 10234, WEBHOOK)
    assert change.updated is not None and change.updated.tzinfo == UTC


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"changelog": {"id": "10234"}}, 10234),
        ({"changelog": {"id": 77}}, 77),
        ({"changelog": {"id": "abc"}}, None),
        ({"changelog": {"id": "-5"}}, None),
        ({"changelog": {"id": True}}, None),
        ({"changelog": {"id": "9" * 40}}, None),
        ({"changelog": "10234"}, None),
        ({}, None),
    ],
)
def test_changelog_id(payload: dict[str, object], expected: int | None) -> None:
    assert changelog_id(payload) == expected


def test_parse_jira_ts_is_utc() -> None:
    assert parse_jira_ts("2026-03-01T13:00:00.123+0100") == T0
    assert parse_jira_ts("2026-03-01T12:00:00.123Z") == T0
    assert parse_jira_ts(None) is None and parse_jira_ts("not a time") is None


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=12),
    order=st.randoms(use_true_random=False),
    replays=st.lists(st.integers(min_value=0, max_value=11), max_size=4),
)
def test_any_arrival_order_ends_at_the_newest_change(
    steps: list[int], order: random.Random, replays: list[int]
) -> None:
    """Jira's changes (ms apart or in the same ms, changelog ids growing) delivered in any order, some replayed:
    the store ends at the newest one and never accepts a change after a newer one."""
    changes, when = [], T0
    for n, gap_ms in enumerate(steps):
        when += timedelta(milliseconds=gap_ms)
        changes.append(_change(f"S{n}", when, 1000 + n))
    arrivals = changes + [changes[i] for i in replays if i < len(changes)]
    order.shuffle(arrivals)
    record = _record(None, None, None)
    accepted: list[StatusChange] = []
    for change in arrivals:
        if place(change, record) == NEWER:
            accepted.append(change)
            record.jira_status, record.jira_updated = change.status, change.updated
            record.jira_changelog_id = change.changelog_id
    assert record.jira_status == changes[-1].status
    assert [c.changelog_id for c in accepted] == sorted({c.changelog_id for c in accepted})
