"""The IFS write without HTTP: If-Match PATCHes, 412 re-reads, the bound action's lost-answer path, batch reads."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ml_connector.config.models import FlowConfig
from ml_connector.engine.report import RunReport
from ml_connector.engine.writeback.changes import POLL, StatusChange
from ml_connector.engine.writeback.ifs_write import IfsStatusWriter
from ml_connector.engine.writeback.plan import PlannedWrite
from ml_connector.errors import AuthError, ConcurrencyConflict, NotFound, Rejected, TransientError, Unavailable
from ml_connector.ifs.odata import Key, KeyValue
from ml_connector.mapping import IfsUpdate
from ml_connector.store import SYNCED, RecordRow

ENTITY_SET = "PurchaseOrderHandling.svc/PurchaseOrderSet"
FLOW = FlowConfig.model_construct(name="purchase_orders", key="OrderNo", key_type="string")
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LOST = Unavailable("connection reset after the request was sent", system="ifs")  # the action may have acted
NOT_SENT = Unavailable("connection refused", system="ifs", not_sent=True)
RESET = TransientError("reset", system="ifs")
WRONG_STATE = Rejected("not allowed in state Closed", system="ifs")


@dataclass
class FakeIfs:
    """IFS entities by order number, each with an ETag that changes on every write."""

    rows: dict[str, dict[str, Any]]
    etags: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0  # the next PATCHes answered 412
    batch_error: Exception | None = None
    action_error: Exception | None = None
    action_acts: bool = True  # whether a call whose answer is lost changed the record
    get_error: Exception | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _found(self, order: str) -> tuple[dict[str, Any], str]:
        return dict(self.rows[order]), f'W/"{self.etags.get(order, 1)}"'

    def _touch(self, order: str) -> None:
        self.etags[order] = self.etags.get(order, 1) + 1

    def get(self, entity_set: str, key: Key, *, select: Sequence[str] | str | None = None) -> tuple[Any, str]:
        self.calls.append(("get", key["OrderNo"]))
        if self.get_error is not None:
            raise self.get_error
        return self._found(str(key["OrderNo"]))

    def get_many_by_keys(
        self, entity_set: str, keys: Sequence[Key], *, select: Sequence[str] | str | None = None
    ) -> dict[tuple[KeyValue, ...], tuple[Any, str]]:
        self.calls.append(("read", [k["OrderNo"] for k in keys]))
        if self.batch_error is not None:
            raise self.batch_error
        return {(k["OrderNo"],): self._found(str(k["OrderNo"])) for k in keys if k["OrderNo"] in self.rows}

    def patch(self, entity_set: str, key: Key, changes: Mapping[str, Any], etag: str) -> tuple[Any, str]:
        order = str(key["OrderNo"])
        self.calls.append(("patch", (order, dict(changes), etag)))
        if self.conflicts:
            self.conflicts -= 1
            self._touch(order)  # someone else wrote it
            raise ConcurrencyConflict("412 Precondition Failed", system="ifs")
        self.rows[order].update(changes)
        self._touch(order)
        return self._found(order)

    def call_action(self, entity_set: str, key: Key, action: str, etag: str, params: Any = None) -> None:
        order = str(key["OrderNo"])
        self.calls.append(("action", (order, action, etag)))
        if self.action_error is not None:
            if self.action_acts:
                self._touch(order)
            raise self.action_error
        self._touch(order)


@dataclass
class FakeOutcomes:
    said: list[tuple[str, Any]] = field(default_factory=list)

    def conflict(self, record: RecordRow, exc: ConcurrencyConflict, conflicts: int, report: RunReport) -> None:
        self.said.append(("conflict", conflicts))

    def action_taken(self, record: RecordRow, action: str, lost: BaseException, report: RunReport) -> None:
        self.said.append(("action_taken", type(lost).__name__))

    def written(
        self, record: RecordRow, change: StatusChange, update: IfsUpdate, conflicts: int, report: RunReport
    ) -> None:
        self.said.append(("written", (record.ifs_key, conflicts)))

    def failed(self, record: RecordRow, error: BaseException, report: RunReport) -> None:
        self.said.append(("failed", (record.ifs_key, error)))


def _planned(order: str, action: str | None = None) -> PlannedWrite:
    record = RecordRow(id=1, flow=FLOW.name, ifs_key=order, state=SYNCED, jira_id="1", jira_key="PROC-1")
    change = StatusChange("1", "PROC-1", "Done", "done", NOW, 7, POLL)
    return PlannedWrite(record, change, IfsUpdate({"Cf_Jira_Status": "Done"}, action, "Done"))


def _write(
    ifs: FakeIfs, *planned: PlannedWrite, retries: int = 2, stop: bool = False
) -> tuple[FakeOutcomes, RunReport]:
    outcomes, report = FakeOutcomes(), RunReport(FLOW.name, "writeback")
    halt = threading.Event()
    if stop:
        halt.set()
    writer = IfsStatusWriter(lambda: ifs, FLOW, ENTITY_SET, outcomes, retries, halt)
    writer.write_batch(planned, report)
    return outcomes, report


def _ifs(*orders: str, **faults: Any) -> FakeIfs:
    return FakeIfs({order: {"OrderNo": order, "Cf_Jira_Status": None} for order in orders}, **faults)


def test_only_missing_fields_are_patched_with_the_etag_read_then_the_action_gets_the_new_one() -> None:
    ifs = _ifs("PO-1")
    outcomes, _ = _write(ifs, _planned("PO-1", "PurchaseOrder_Close"))
    assert ifs.calls == [
        ("read", ["PO-1"]),
        ("patch", ("PO-1", {"Cf_Jira_Status": "Done"}, 'W/"1"')),
        ("action", ("PO-1", "PurchaseOrder_Close", 'W/"2"')),
    ]
    assert outcomes.said == [("written", ("PO-1", 0))]


def test_a_row_that_already_has_the_values_is_not_patched() -> None:
    ifs = _ifs("PO-1")
    ifs.rows["PO-1"]["Cf_Jira_Status"] = "Done"
    outcomes, _ = _write(ifs, _planned("PO-1"))
    assert [call for call, _ in ifs.calls] == ["read"]
    assert outcomes.said == [("written", ("PO-1", 0))]


@pytest.mark.parametrize(
    ("conflicts", "said"),
    [
        (1, [("conflict", 1), ("written", ("PO-1", 1))]),
        (2, [("conflict", 1), ("conflict", 2), ("written", ("PO-1", 2))]),
    ],
)
def test_a_412_reads_again_and_reapplies(conflicts: int, said: list[tuple[str, Any]]) -> None:
    ifs = _ifs("PO-1", conflicts=conflicts)
    outcomes, _ = _write(ifs, _planned("PO-1"), retries=2)
    assert outcomes.said == said
    patched_with = [args[2] for call, args in ifs.calls if call == "patch"]
    assert patched_with == [f'W/"{n}"' for n in range(1, conflicts + 2)]  # each retry with the ETag read again
    assert [a for c, a in ifs.calls if c == "get"] == ["PO-1"] * conflicts


def test_412s_beyond_the_retries_fail_the_record_as_unavailable() -> None:
    outcomes, _ = _write(_ifs("PO-1", conflicts=5), _planned("PO-1"), retries=2)
    assert [what for what, _ in outcomes.said] == ["conflict", "conflict", "conflict", "failed"]
    error = outcomes.said[-1][1][1]
    assert isinstance(error, Unavailable) and error.status == 412 and "3 times 412" in str(error)


@pytest.mark.parametrize(
    ("faults", "said", "reads"),
    [
        ({"action_error": LOST}, [("action_taken", "Unavailable"), ("written", ("PO-1", 0))], 1),  # new ETag: acted
        ({"action_error": LOST, "action_acts": False}, [("failed", ("PO-1", LOST))], 1),  # same ETag: call again
        ({"action_error": LOST, "get_error": RESET}, [("failed", ("PO-1", LOST))], 1),  # unknown: call again
        ({"action_error": NOT_SENT, "action_acts": False}, [("failed", ("PO-1", NOT_SENT))], 0),  # not ambiguous
        ({"action_error": WRONG_STATE}, [("failed", ("PO-1", WRONG_STATE))], 0),
    ],
)
def test_a_lost_action_answer_is_settled_by_the_etag(
    faults: dict[str, Any], said: list[tuple[str, Any]], reads: int
) -> None:
    ifs = _ifs("PO-1", **faults)
    outcomes, _ = _write(ifs, _planned("PO-1", "PurchaseOrder_Close"))
    assert outcomes.said == said
    assert [call for call, _ in ifs.calls].count("get") == reads


def test_a_transient_batch_read_fails_every_record_of_the_batch() -> None:
    outcomes, _ = _write(_ifs("PO-1", "PO-2", batch_error=Unavailable("503", system="ifs")), _planned("PO-1"))
    assert [what for what, _ in outcomes.said] == ["failed"]
    ifs = _ifs("PO-1", "PO-2", batch_error=Unavailable("503", system="ifs"))
    outcomes, _ = _write(ifs, _planned("PO-1"), _planned("PO-2"))
    assert [(what, order) for what, (order, _) in outcomes.said] == [("failed", "PO-1"), ("failed", "PO-2")]
    assert [call for call, _ in ifs.calls] == ["read"]


def test_a_refused_batch_read_lets_each_record_read_its_own_row() -> None:
    ifs = _ifs("PO-1", "PO-2", batch_error=Rejected("filter too long", system="ifs"))
    outcomes, _ = _write(ifs, _planned("PO-1"), _planned("PO-2"))
    assert outcomes.said == [("written", ("PO-1", 0)), ("written", ("PO-2", 0))]
    assert [a for c, a in ifs.calls if c == "get"] == ["PO-1", "PO-2"]
    alone = _ifs("PO-1", batch_error=Rejected("filter too long", system="ifs"))
    assert [what for what, _ in _write(alone, _planned("PO-1"))[0].said] == ["failed"]  # its own read failed


def test_a_record_missing_in_ifs_fails_alone() -> None:
    ifs = _ifs("PO-2")
    ifs.get_error = NotFound("404", system="ifs")
    outcomes, _ = _write(ifs, _planned("PO-1"), _planned("PO-2"))
    assert [(what, order) for what, (order, _) in outcomes.said] == [("failed", "PO-1"), ("written", "PO-2")]


def test_a_systemic_error_stops_the_batch() -> None:
    ifs = _ifs("PO-1", batch_error=AuthError("401", system="ifs", status=401))
    with pytest.raises(AuthError):
        _write(ifs, _planned("PO-1"))


def test_a_stop_interrupts_before_the_next_record() -> None:
    ifs = _ifs("PO-1")
    outcomes, report = _write(ifs, _planned("PO-1"), stop=True)
    assert outcomes.said == [] and report.interrupted
