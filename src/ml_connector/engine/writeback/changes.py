"""A Jira issue's status change as a poll, a webhook delivery or the store's pending status presents it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from ml_connector.engine.timestamps import parse_ts
from ml_connector.jira.webhooks import changelog_id

# The issue fields a write-back read needs.
ISSUE_FIELDS = ("status", "updated")

# Where a change came from: a poll (a fresh read of the issue), a webhook delivery, or the store's own pending status.
Origin = Literal["poll", "webhook", "pending"]
POLL: Final = "poll"
WEBHOOK: Final = "webhook"
PENDING: Final = "pending"


@dataclass(frozen=True)
class StatusChange:
    """A Jira issue's status as seen by polling or a webhook, with the issue's own time of that change."""

    jira_id: str
    jira_key: str | None
    status: str
    category: str | None
    updated: datetime | None = None
    changelog_id: int | None = None
    origin: Origin = POLL


def change_from_issue(
    issue: Mapping[str, Any], *, changelog: int | None = None, origin: Origin = POLL
) -> StatusChange | None:
    """The status change an issue as Jira renders it shows; None when it has no status."""
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
