"""What a live change writes to IFS (pure): the mapped update, or why nothing is written now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ml_connector.config.models import FlowConfig, StatusWrite, WritebackMapping
from ml_connector.engine.writeback.changes import POLL, StatusChange
from ml_connector.engine.writeback.plan import WB_ERROR, Skip, Write, ifs_key, plan_write, still_needed
from ml_connector.mapping import IfsUpdate
from ml_connector.store import PARKED, SYNCED, RecordRow

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DEFAULT = WritebackMapping()
CLOSING = WritebackMapping(statuses={"Done": StatusWrite(value="Closed", action="PurchaseOrder_Close")})
STRICT = WritebackMapping(write_unmapped=False)


def _record(state: str = SYNCED, **values: Any) -> RecordRow:
    return RecordRow(id=1, flow="purchase_orders", ifs_key="PO-1", state=state, jira_key="PROC-1", **values)


def _change(status: str = "Done", category: str | None = "done", key: str | None = "PROC-1") -> StatusChange:
    return StatusChange("10001", key, status, category, NOW, 7, POLL)


def _write(changes: dict[str, Any], action: str | None = None, status: str = "Done") -> Write:
    return Write(IfsUpdate(changes=changes, action=action, status=status))


@pytest.mark.parametrize(
    ("record", "change", "mapping", "expected"),
    [
        (_record(written_status="Done"), _change(), DEFAULT, Skip("in_ifs")),  # the poll overlap, or our own echo
        (_record(), _change("To Do", "new"), DEFAULT, Skip("not_moved")),  # nobody moved the new issue yet
        (
            _record(),
            _change("To Do", "new"),
            WritebackMapping(initial=True),
            _write({"Cf_Jira_Status": "To Do", "Cf_Jira_Key": "PROC-1"}, status="To Do"),
        ),
        (  # moved back to a new status after a write: IFS is told
            _record(written_status="In Progress"),
            _change("To Do", "new"),
            DEFAULT,
            _write({"Cf_Jira_Status": "To Do", "Cf_Jira_Key": "PROC-1"}, status="To Do"),
        ),
        (_record(state=PARKED, last_error=f"{WB_ERROR}412"), _change(), DEFAULT, Skip("held")),
        (  # parked by the outbound side: the write-back goes on
            _record(state=PARKED, last_error="field error"),
            _change(),
            DEFAULT,
            _write({"Cf_Jira_Status": "Done", "Cf_Jira_Key": "PROC-1"}),
        ),
        (_record(writeback_next_attempt_at=NOW + timedelta(seconds=1)), _change(), DEFAULT, Skip("waiting")),
        (
            _record(writeback_next_attempt_at=NOW),  # due now
            _change(),
            DEFAULT,
            _write({"Cf_Jira_Status": "Done", "Cf_Jira_Key": "PROC-1"}),
        ),
        (_record(), _change(), STRICT, Skip("unmapped")),
        (
            _record(),
            _change(key=None),  # a pending change has the record's key
            CLOSING,
            _write({"Cf_Jira_Status": "Closed", "Cf_Jira_Key": "PROC-1"}, "PurchaseOrder_Close"),
        ),
        (
            _record(),
            _change(key="NEW-9"),  # moved issue: the new key
            CLOSING,
            _write({"Cf_Jira_Status": "Closed", "Cf_Jira_Key": "NEW-9"}, "PurchaseOrder_Close"),
        ),
    ],
)
def test_plan_write(record: RecordRow, change: StatusChange, mapping: WritebackMapping, expected: Write | Skip) -> None:
    assert plan_write(record, change, NOW, mapping) == expected


@pytest.mark.parametrize(
    ("row", "changes", "needed"),
    [
        ({}, {"A": 1, "B": "x"}, {"A": 1, "B": "x"}),
        ({"A": 1, "B": "y"}, {"A": 1, "B": "x"}, {"B": "x"}),  # someone wrote A between our read and a 412
        ({"A": 1, "B": "x"}, {"A": 1, "B": "x"}, {}),
        ({"A": "1"}, {"A": 1}, {"A": 1}),  # compared as IFS returns it, not coerced
    ],
)
def test_still_needed(row: dict[str, Any], changes: dict[str, Any], needed: dict[str, Any]) -> None:
    assert still_needed(row, changes) == needed


@pytest.mark.parametrize(
    ("key_type", "stored", "expected"),
    [("string", "PO-1", {"OrderNo": "PO-1"}), ("int", "42", {"OrderNo": 42})],
)
def test_ifs_key(key_type: str, stored: str, expected: dict[str, Any]) -> None:
    flow = FlowConfig.model_construct(name="f", key="OrderNo", key_type=key_type)
    assert ifs_key(flow, RecordRow(id=1, flow="f", ifs_key=stored, state=SYNCED)) == expected
