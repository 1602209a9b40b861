"""A Jira status change read from an issue or a webhook delivery, with the issue's own order marks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ml_connector.engine.writeback.changes import (
    POLL,
    WEBHOOK,
    StatusChange,
    change_from_delivery,
    change_from_issue,
    parse_jira_ts,
)
from ml_connector.jira.webhooks import changelog_id

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


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
    ("issue", "expected"),
    [
        (
            {"id": 7, "key": "P-7", "fields": {"status": {"name": "Open"}, "updated": "2026-03-01T12:00:00.123Z"}},
            StatusChange("7", "P-7", "Open", None, T0, None, POLL),
        ),
        (
            {"id": "7", "fields": {"status": {"name": "Open", "statusCategory": {"key": "new"}}}},
            StatusChange("7", None, "Open", "new", None, None, POLL),
        ),
        ({"id": "7", "fields": {"status": {"name": ""}}}, None),  # no status name: nothing to write back
        ({"id": "7", "fields": {"status": "Open"}}, None),  # not an object: not Jira's shape
        ({"id": "7", "fields": None}, None),
        ({"id": "7"}, None),
    ],
)
def test_change_from_issue(issue: dict[str, Any], expected: StatusChange | None) -> None:
    assert change_from_issue(issue) == expected


@pytest.mark.parametrize("payload", [{}, {"issue": None}, {"issue": "10001"}, {"issue": {"id": "1", "fields": {}}}])
def test_a_delivery_without_an_issue_status_is_no_change(payload: dict[str, Any]) -> None:
    assert change_from_delivery(payload) is None


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T13:00:00.123+0100", T0),
        ("2026-03-01T04:00:00.123-0800", T0),
        ("2026-03-01T13:00:00.123+01:00", T0),
        ("2026-03-01T12:00:00.123Z", T0),
        (None, None),
        ("", None),
        ("not a time", None),
    ],
)
def test_parse_jira_ts_is_utc(text: str | None, expected: datetime | None) -> None:
    parsed = parse_jira_ts(text)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo == UTC
