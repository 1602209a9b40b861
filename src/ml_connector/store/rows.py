"""What the store hands back: row dataclasses, the record states, and the UTC clock every repository uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# Record states
PENDING_CREATE = "pending_create"
PENDING_UPDATE = "pending_update"
SYNCED = "synced"
RETRY = "retry"
PARKED = "parked"
ORPHANED = "orphaned"
RECORD_STATES = (PENDING_CREATE, PENDING_UPDATE, SYNCED, RETRY, PARKED, ORPHANED)
FAILED_STATES = (PARKED, RETRY)  # the failed queue, as the CLI and the web both call it

_RECORD_TIMES = (
    "create_attempted_at",
    "next_attempt_at",
    "created_at",
    "updated_at",
    "jira_updated",
    "writeback_next_attempt_at",
)


@dataclass
class RecordRow:
    id: int
    flow: str
    ifs_key: str
    state: str
    source_hash: str | None = None
    draft_hash: str | None = None
    source_ts: str | None = None
    draft: dict[str, Any] | None = None
    jira_id: str | None = None
    jira_key: str | None = None
    jira_status: str | None = None
    jira_status_category: str | None = None
    written_status: str | None = None
    jira_updated: datetime | None = None
    jira_changelog_id: int | None = None
    create_attempted_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error_class: str | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    writeback_attempts: int = 0
    writeback_next_attempt_at: datetime | None = None
    reason: str | None = None  # ml_connector.reasons code of the last failure
    reason_value: str | None = None
    connection: str = "default"

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RecordRow:
        values = dict(row)
        for name in _RECORD_TIMES:
            values[name] = aware(values.get(name))
        return cls(**values)


@dataclass(frozen=True)
class FailureGroup:
    """Failed records (parked or retrying) of one flow with one reason code; ``values`` the varying values with
    their counts, most frequent first (``None``: records whose reason carries no value)."""

    flow: str
    reason: str
    count: int
    values: tuple[tuple[str | None, int], ...]


@dataclass
class AuditEvent:
    event: str
    outcome: str = "ok"
    message: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass
class AuditRow:
    id: int
    record_id: int
    run_id: int | None
    at: datetime
    event: str
    outcome: str
    message: str | None
    detail: dict[str, Any] | None
    digest: str | None
    connection: str = "default"


@dataclass
class RunRow:
    id: int
    flow: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    connection: str = "default"

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RunRow:
        values = dict(row)
        values["started_at"] = aware(values["started_at"])
        values["finished_at"] = aware(values["finished_at"])
        values["counts"] = values.get("counts") or {}
        return cls(**values)
