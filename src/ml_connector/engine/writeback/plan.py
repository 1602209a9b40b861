"""What to write to IFS for a live change (pure): the mapped update, or why nothing is written now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from ml_connector.config.models import FlowConfig, WritebackMapping
from ml_connector.engine.writeback.changes import StatusChange
from ml_connector.ifs.odata import Key
from ml_connector.mapping import IfsUpdate, map_status
from ml_connector.store import PARKED, RecordRow

# Every write-back error is stored with this prefix, so the record's own outbound errors stay apart.
WB_ERROR = "write-back: "

SkipReason = Literal["in_ifs", "not_moved", "held", "waiting", "unmapped"]
# The skips a run report counts: the ones an operator waits on.
HELD: Final = "held"
WAITING: Final = "waiting"
REPORTED_SKIPS: frozenset[SkipReason] = frozenset({HELD, WAITING})


@dataclass(frozen=True)
class Write:
    update: IfsUpdate


@dataclass(frozen=True)
class Skip:
    reason: SkipReason


@dataclass(frozen=True)
class PlannedWrite:
    """A live change and the IFS update it needs."""

    record: RecordRow
    change: StatusChange
    update: IfsUpdate


def parked_by_writeback(record: RecordRow) -> bool:
    return record.state == PARKED and (record.last_error or "").startswith(WB_ERROR)


def plan_write(record: RecordRow, change: StatusChange, now: datetime, mapping: WritebackMapping) -> Write | Skip:
    """The IFS write ``change`` needs now, or why not (already there, not written back, or waiting).

    Pure, but the mapping may raise a ``MappingError``: that is the record's failure, for the caller to store.
    """
    if record.written_status == change.status:
        return Skip("in_ifs")  # the overlap of polling, or our own echo
    if record.written_status is None and change.category == "new" and not mapping.initial:
        return Skip("not_moved")  # a new issue nobody has moved yet (or moved back): nothing to tell IFS
    if parked_by_writeback(record):
        return Skip(HELD)  # parked: written again after a replay
    due = record.writeback_next_attempt_at
    if due is not None and due > now:
        return Skip(WAITING)  # backing off after a failure; the status is kept and written when due
    update = map_status(
        mapping, status=change.status, category=change.category, jira_key=change.jira_key or record.jira_key
    )
    return Write(update) if update is not None else Skip("unmapped")


def still_needed(row: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``changes`` the IFS row does not hold yet (after a 412 someone may have written them)."""
    return {name: value for name, value in changes.items() if row.get(name) != value}


def ifs_key(flow: FlowConfig, record: RecordRow) -> Key:
    """The record's IFS key as the entity set types it."""
    if flow.key_type == "int":
        return {flow.key: int(record.ifs_key)}
    return {flow.key: record.ifs_key}
