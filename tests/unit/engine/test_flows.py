"""``engine.run_flow``: the one way a flow runs (CLI, daemon, dashboard). The steps are stand-ins; the lock, the store
and the run rows are real (a SQLite file)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ml_connector.config.models import FlowConfig, load_config
from ml_connector.engine import (
    Connector,
    FlowBusy,
    FlowOptions,
    OutboundSync,
    RunReport,
    WritebackSync,
    flow_lock,
    replay_flows,
)
from ml_connector.engine import flows as flows_module
from ml_connector.engine.flows import run_flow
from ml_connector.errors import TransientError
from ml_connector.store import Store

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"
FLOW = "purchase_orders"


class Calls:
    """Stand-in steps: each records its kind, then does what the test set for it (default: a finished report)."""

    def __init__(self, connector: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kinds: list[str] = []
        self.observed: list[tuple[str, str]] = []
        self.then: dict[str, Callable[[], None]] = {}
        calls = self

        def outbound(sync: OutboundSync, **options: object) -> RunReport:
            return calls._step("outbound", sync.c)

        def writeback(sync: WritebackSync, **options: object) -> RunReport:
            return calls._step("writeback", sync.connector)

        def inbox(c: Connector, **options: object) -> RunReport:
            return calls._step("webhook", c, flow="*")

        monkeypatch.setattr(OutboundSync, "run", outbound)
        monkeypatch.setattr(WritebackSync, "run", writeback)
        monkeypatch.setattr(flows_module, "process_inbox", inbox)

    def _step(self, kind: str, c: Connector, flow: str = FLOW) -> RunReport:
        self.kinds.append(kind)
        report = RunReport(flow, kind)
        with c.run_row(report, default_system="ifs"):  # the real run row: opened, finished with the outcome
            self.then.get(kind, lambda: None)()
            report.add("created")
        return report

    def observe(self, report: RunReport, seconds: float) -> None:
        self.observed.append((report.kind, report.status))


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    config = load_config(EXAMPLE, env={"IFS_URL": "http://127.0.0.1:9", "JIRA_URL": "http://127.0.0.1:9"})
    c = Connector(config=config, store=Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    yield c
    c.store.close()


@pytest.fixture
def calls(connector: Connector, monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(connector, monkeypatch)


def flow(connector: Connector) -> FlowConfig:
    return connector.config.flow(FLOW)


def runs(connector: Connector) -> list[tuple[str, str]]:
    return [(r.kind, r.status) for r in reversed(connector.store.runs.recent(flow=FLOW))]


def test_the_steps_run_in_order_under_the_flow_lock(connector: Connector, calls: Calls) -> None:
    seen_lock: list[bool] = []
    calls.then["writeback"] = lambda: seen_lock.append(connector.store.leases.holder(f"flow:{FLOW}") is not None)
    run = run_flow(connector, flow(connector), stop=threading.Event(), observe=calls.observe)
    assert calls.kinds == ["outbound", "writeback", "webhook"]
    assert [s.kind for s in run.steps] == ["outbound", "writeback", "webhook"] and not run.busy
    assert seen_lock == [True] and connector.store.leases.holder(f"flow:{FLOW}") is None  # released after
    # The inbox observes its own batches; run_flow observes the flow's runs.
    assert calls.observed == [("outbound", "succeeded"), ("writeback", "succeeded")]


def test_stop_is_honoured_between_steps(connector: Connector, calls: Calls) -> None:
    stop = threading.Event()
    calls.then["outbound"] = stop.set
    run = run_flow(connector, flow(connector), stop=stop)
    assert calls.kinds == ["outbound"] and run.stopped_before == "writeback"
    assert [r.kind for r in run.reports] == ["outbound"]


def test_a_run_whose_lease_is_lost_stops_there_and_says_so(
    connector: Connector, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once another process holds the flow's lease it may run the flow too: this run must end at its next safe point,
    without stopping the other runs that share ``stop``."""
    monkeypatch.setattr(flows_module, "flow_lock", functools.partial(flow_lock, ttl=timedelta(seconds=0.3)))
    seen_by_the_step: list[bool] = []

    def outbound(sync: OutboundSync, **options: object) -> RunReport:
        holder = connector.store.leases.holder(f"flow:{FLOW}")
        assert holder is not None
        connector.store.leases.release(f"flow:{FLOW}", holder[0])  # as if it had expired...
        assert connector.store.leases.acquire(f"flow:{FLOW}", "elsewhere:1:cafe", timedelta(hours=1))  # ...and taken
        seen_by_the_step.append(sync.stop.wait(5))
        return RunReport(FLOW, "outbound")

    monkeypatch.setattr(OutboundSync, "run", outbound)
    stop = threading.Event()
    run = run_flow(connector, flow(connector), stop=stop)
    assert seen_by_the_step == [True]  # the step's own stop was set: the sync ends at its next safe point
    assert run.lease_lost and run.stopped_before == "writeback" and not stop.is_set()


def test_a_connector_error_ends_the_flow_with_a_failed_run_row_and_is_observed(
    connector: Connector, calls: Calls
) -> None:
    def fail() -> None:
        raise TransientError("IFS answered 503 five times", system="ifs")

    calls.then["outbound"] = fail
    run = run_flow(connector, flow(connector), stop=threading.Event(), observe=calls.observe)
    assert calls.kinds == ["outbound"]  # neither write-back nor inbox after a failed step
    (step,) = run.steps
    assert isinstance(step.error, TransientError) and not step.crashed and run.reports == []
    assert step.report.status == "failed" and "503" in (step.report.error or "")
    assert runs(connector) == [("outbound", "failed")]
    assert calls.observed == [("outbound", "failed")]


def test_keep_going_runs_the_later_steps_after_a_failed_one(connector: Connector, calls: Calls) -> None:
    def fail() -> None:
        raise TransientError("IFS down", system="ifs")

    calls.then["outbound"] = fail
    options = FlowOptions(keep_going=True, inbox=False)
    run = run_flow(connector, flow(connector), stop=threading.Event(), options=options)
    assert calls.kinds == ["outbound", "writeback"]
    assert [(s.kind, s.error is None) for s in run.steps] == [("outbound", False), ("writeback", True)]


def test_an_unexpected_exception_writes_a_crash_row_and_is_not_observed_as_a_run(
    connector: Connector, calls: Calls
) -> None:
    def bug() -> None:
        raise KeyError("a bug")

    calls.then["writeback"] = bug
    run = run_flow(connector, flow(connector), stop=threading.Event(), observe=calls.observe)
    assert calls.kinds == ["outbound", "writeback"]
    assert run.steps[-1].crashed and run.steps[-1].kind == "writeback"
    # The step's own row (finished as failed by run_row) and the crash row, whatever the step left behind.
    assert runs(connector) == [("outbound", "succeeded"), ("writeback", "failed"), ("writeback", "failed")]
    crash = connector.store.runs.recent(flow=FLOW, limit=1)[0]
    assert crash.error is not None and crash.error.startswith("KeyError")
    assert calls.observed == [("outbound", "succeeded")]


def test_the_cli_writes_no_crash_row(connector: Connector, calls: Calls) -> None:
    def bug() -> None:
        raise KeyError("a bug")

    calls.then["outbound"] = bug
    run_flow(connector, flow(connector), stop=threading.Event(), options=FlowOptions(record_crash=False))
    assert runs(connector) == [("outbound", "failed")]


def test_a_flow_another_process_runs_is_skipped_untouched(connector: Connector, calls: Calls) -> None:
    with flow_lock(connector.store, FLOW):
        run = run_flow(connector, flow(connector), stop=threading.Event(), observe=calls.observe)
        dry = run_flow(connector, flow(connector), stop=threading.Event(), options=FlowOptions(dry_run=True))
    assert run.busy and isinstance(run.steps[0].error, FlowBusy) and run.steps[0].kind == "outbound"
    assert run.reports == [] and calls.observed == []
    # A dry run writes nothing, so it takes no lock; it never drains the inbox either.
    assert not dry.busy and calls.kinds == ["outbound", "writeback"]
    assert runs(connector) == [("outbound", "succeeded"), ("writeback", "succeeded")]


def test_replay_runs_only_the_queue(connector: Connector, calls: Calls) -> None:
    (run,) = replay_flows(connector, [FLOW], stop=threading.Event())
    assert calls.kinds == ["outbound"] and [s.kind for s in run.steps] == ["replay"]
