"""Order, not arrival: how a Jira change is placed against the newest one the store accepted (issue 15, item 2)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.config.models import WritebackMapping
from ml_connector.engine.writeback.changes import PENDING, POLL, WEBHOOK, Origin, StatusChange
from ml_connector.engine.writeback.order import (
    NEWER,
    OLDER,
    SAME,
    Placement,
    is_stale,
    newest_per_issue,
    place,
    sort_changes,
)
from ml_connector.engine.writeback.outcomes import accepted_values
from ml_connector.engine.writeback.plan import Write, plan_write
from ml_connector.store import SYNCED, RecordRow

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _record(
    updated: datetime | None, changelog: int | None, status: str | None = "In Progress", jira_id: str = "10001"
) -> RecordRow:
    return RecordRow(
        id=1,
        flow="purchase_orders",
        ifs_key="PO-1",
        state=SYNCED,
        jira_id=jira_id,
        jira_status=status,
        jira_updated=updated,
        jira_changelog_id=changelog,
    )


def _change(
    status: str,
    updated: datetime | None,
    changelog: int | None = None,
    origin: Origin = WEBHOOK,
    jira_id: str = "10001",
) -> StatusChange:
    return StatusChange(jira_id, "PROC-1", status, "indeterminate", updated, changelog, origin)


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


@pytest.mark.parametrize(
    ("origin", "where", "stale"),
    [
        (WEBHOOK, NEWER, False),
        (WEBHOOK, SAME, True),  # a replayed delivery, or one a poll read first
        (WEBHOOK, OLDER, True),
        (POLL, NEWER, False),
        (POLL, SAME, False),  # the poll overlap: IFS may still lack it
        (POLL, OLDER, True),
        (PENDING, NEWER, False),
    ],
)
def test_is_stale(origin: Origin, where: Placement, stale: bool) -> None:
    assert is_stale(_change("Done", T0, origin=origin), where) is stale


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


LATER = T0 + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("changes", "live", "stale"),
    [
        ([], [], []),
        ([_change("Done", LATER, 101, jira_id="99")], [], []),  # not linked to the flow: ignored
        ([_change("Done", LATER, 101)], [("Done", True)], []),
        ([_change("In Progress", T0, 100)], [], ["In Progress"]),  # a replay of the accepted change
        ([_change("Done", T0 - timedelta(seconds=1), 90)], [], ["Done"]),  # late
        ([_change("In Progress", T0, origin=POLL)], [("In Progress", False)], []),  # overlap: may need writing
        ([_change("Done", LATER, origin=POLL)], [("Done", True)], []),
        ([_change("Blocked", None, origin=PENDING)], [("Blocked", False)], []),  # already accepted: only written
        # In one batch the newest wins; a superseded delivery is audited stale, a superseded poll just dropped.
        ([_change("A", LATER, 101), _change("B", LATER, 102)], [("B", True)], ["A"]),
        ([_change("B", LATER, 102), _change("A", LATER, 101)], [("B", True)], ["A"]),
        ([_change("A", LATER, origin=POLL), _change("B", LATER, 102)], [("B", True)], []),
        ([_change("A", LATER, 101), _change("Z", T0, 99)], [("A", True)], ["Z"]),
    ],
)
def test_sort_changes(changes: list[StatusChange], live: list[tuple[str, bool]], stale: list[str]) -> None:
    record = _record(T0, 100)
    result = sort_changes(changes, {"10001": record})
    assert [(item.change.status, item.accept) for item in result.live] == live
    assert all(item.record is record for item in result.live)
    assert [(r, c.status) for r, c in result.stale] == [(record, status) for status in stale]


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
    changes = _history(steps)
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


def _history(steps: list[int]) -> list[StatusChange]:
    """One issue's changes as Jira makes them: ``updated`` never goes back, the changelog id always grows."""
    changes, when = [], T0
    for n, gap_ms in enumerate(steps):
        when += timedelta(milliseconds=gap_ms)
        changes.append(_change(f"S{n}", when, 1000 + n))
    return changes


def _deliver(record: RecordRow, batch: list[StatusChange]) -> None:
    """One inbox pass over ``batch`` as the write-back applies it: accept, then write what the plan says."""
    for live in sort_changes(batch, {"10001": record}).live:
        if live.accept:
            for name, value in accepted_values(record, live.change).items():
                setattr(record, name, value)
        planned = plan_write(record, live.change, T0, WritebackMapping())
        if isinstance(planned, Write):
            record.written_status = live.change.status


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=10),
    order=st.randoms(use_true_random=False),
    replays=st.lists(st.integers(min_value=0, max_value=9), max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=14), max_size=5),
)
def test_the_written_status_is_the_newest_change_whatever_the_order_and_batches(
    steps: list[int], order: random.Random, replays: list[int], cuts: list[int]
) -> None:
    """The ordering rule end to end: any set of changes to one issue, delivered in any order and in any batches
    (some replayed), leaves IFS with the status of the newest (updated, changelog id)."""
    changes = _history(steps)
    arrivals = changes + [changes[i] for i in replays if i < len(changes)]
    order.shuffle(arrivals)
    bounds = [0, *sorted(c for c in cuts if c < len(arrivals)), len(arrivals)]
    record = _record(None, None, None)
    for start, end in itertools.pairwise(bounds):
        _deliver(record, arrivals[start:end])
    newest = max(changes, key=lambda c: (c.updated, c.changelog_id))
    assert record.written_status == newest.status
    assert (record.jira_updated, record.jira_changelog_id) == (newest.updated, newest.changelog_id)
