"""What the store keeps of a write-back (the pure values and audit events; saving them is integration-tested)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ml_connector.engine.failures import FailureDecision
from ml_connector.engine.writeback.changes import WEBHOOK, StatusChange
from ml_connector.engine.writeback.outcomes import (
    accepted_values,
    failure_event,
    failure_values,
    stale_event,
    written_event,
    written_values,
)
from ml_connector.engine.writeback.plan import WB_ERROR
from ml_connector.mapping import IfsUpdate
from ml_connector.reasons import Reason
from ml_connector.store import PARKED, RETRY, SYNCED, RecordRow

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CHANGE = StatusChange("10001", "PROC-1", "Done", "done", NOW, 7, WEBHOOK)


def _record(**values: Any) -> RecordRow:
    return RecordRow(id=1, flow="purchase_orders", ifs_key="PO-1", state=SYNCED, **values)


@pytest.mark.parametrize(
    ("written", "clears_backoff"),
    [(None, False), ("In Progress", False), ("Done", True)],  # IFS has it already: nothing left to retry
)
def test_accepted_values(written: str | None, clears_backoff: bool) -> None:
    values = accepted_values(_record(written_status=written, writeback_attempts=2), CHANGE)
    assert values["jira_status"] == "Done" and values["jira_status_category"] == "done"
    assert (values["jira_updated"], values["jira_changelog_id"]) == (NOW, 7)
    backoff = {"writeback_attempts": 0, "writeback_next_attempt_at": None}
    assert (backoff.items() <= values.items()) is clears_backoff


@pytest.mark.parametrize(
    ("last_error", "clears_error"),
    [(None, False), ("field error", False), (f"{WB_ERROR}IFS down", True)],  # only its own error is cleared
)
def test_written_values(last_error: str | None, clears_error: bool) -> None:
    values = written_values(_record(last_error=last_error, jira_status="Blocked"), CHANGE)
    assert values["written_status"] == "Done"  # what IFS got, not the newest accepted
    assert "jira_status" not in values
    assert (values["writeback_attempts"], values["writeback_next_attempt_at"]) == (0, None)
    assert ("last_error" in values and values["last_error"] is None) is clears_error
    assert ("reason" in values and values["reason"] is None and values["reason_value"] is None) is clears_error


def test_written_event_records_the_if_match_write() -> None:
    update = IfsUpdate(changes={"Cf_Jira_Status": "Closed"}, action="PurchaseOrder_Close", status="Done")
    event = written_event(CHANGE, update, conflicts=2)
    assert event.event == "written_back"
    assert event.detail == {
        "status": "Done",
        "changes": {"Cf_Jira_Status": "Closed"},
        "action": "PurchaseOrder_Close",
        "if_match": True,
        "conflicts": 2,
        "updated": "2026-03-01T12:00:00.000000Z",
        "changelog_id": 7,
    }


def test_stale_event_names_both_changes() -> None:
    record = _record(jira_status="Blocked", jira_updated=NOW + timedelta(seconds=1), jira_changelog_id=8)
    event = stale_event(record, CHANGE)
    assert (event.event, event.outcome) == ("stale", "warning")
    assert event.message is not None and "dropped webhook status 'Done'" in event.message
    assert event.detail is not None
    assert event.detail["applied_status"] == "Blocked" and event.detail["applied_changelog_id"] == 8


@pytest.mark.parametrize(
    ("state", "next_attempt", "parked", "retry_in"),
    [
        (RETRY, NOW + timedelta(seconds=90), False, 90.0),
        (PARKED, None, True, None),
    ],
)
def test_failure_values_and_event(
    state: str, next_attempt: datetime | None, parked: bool, retry_in: float | None
) -> None:
    decision = FailureDecision(state, 3, next_attempt, "Unavailable", "IFS down", reason=Reason("unavailable", "ifs"))
    values = failure_values(decision)
    assert (values["reason"], values["reason_value"]) == ("unavailable", "ifs")  # grouped in status and metrics
    assert values["last_error"] == f"{WB_ERROR}IFS down" and values["error_class"] == "Unavailable"
    assert (values["writeback_attempts"], values["writeback_next_attempt_at"]) == (3, next_attempt)
    assert (values.get("state") == PARKED) is parked  # the outbound state is untouched unless parked
    event = failure_event(decision, NOW)
    assert event.message is not None and event.message.startswith(
        "write-back parked" if parked else "write-back failed, will retry"
    )
    assert event.detail is not None
    assert event.detail["parked"] is parked and event.detail["retry_in_seconds"] == retry_in
