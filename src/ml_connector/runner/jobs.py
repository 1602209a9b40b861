"""One flow job: outbound, then write-back, then the webhook inbox. Errors become data, never a dead scheduler."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine import Connector, FlowBusy, OutboundSync, RunReport, WritebackSync, flow_lock, process_inbox
from ml_connector.engine.runtime import describe
from ml_connector.errors import ConnectorError

log = structlog.get_logger("ml_connector.runner")

FlowJob = Callable[[Connector, FlowConfig, threading.Event], list[RunReport]]


def run_flow_job(connector: Connector, flow: FlowConfig, stop: threading.Event) -> list[RunReport]:
    """Run one flow end to end; returns what ran. Never raises for a foreseeable or unforeseen failure."""
    try:
        with flow_lock(connector.store, flow.name):
            return _run_steps(connector, flow, stop)
    except FlowBusy as exc:  # a CLI sync or replay of this flow is running: skip this tick, the next one catches up
        log.info("flow.skipped", flow=flow.name, reason=str(exc))
        return []


def _run_steps(connector: Connector, flow: FlowConfig, stop: threading.Event) -> list[RunReport]:
    reports: list[RunReport] = []
    steps: list[tuple[str, Callable[[], RunReport]]] = [
        ("outbound", lambda: OutboundSync(connector, flow, stop=stop).run()),
    ]
    if flow.writeback.enabled:
        steps.append(("writeback", lambda: WritebackSync(connector, flow, stop=stop).run()))
    # The inbox is shared by all flows; each flow job drains it so webhook events never wait for a full cycle.
    steps.append(("webhook", lambda: process_inbox(connector, stop=stop)))
    for kind, step in steps:
        if stop.is_set():
            log.info("flow.stopped", flow=flow.name, before=kind)
            break
        started = time.monotonic()
        try:
            report = step()
        except ConnectorError as exc:
            # The engine already finished its run row with the error and noted the system's health.
            log.error("flow.failed", flow=flow.name, kind=kind, error_class=type(exc).__name__, error=describe(exc))
            observe = getattr(connector.observer, "observe_run", None)
            if observe is not None:  # a failed run must show in mlc_runs_total{status="failed"} too
                observe(RunReport(flow.name, kind, error=describe(exc)), time.monotonic() - started)
            break
        except Exception as exc:  # a bug in one run must not kill the daemon
            log.exception("flow.crashed", flow=flow.name, kind=kind, error_class=type(exc).__name__)
            _record_crash(connector, flow.name, kind, exc)
            break
        reports.append(report)
        observe = getattr(connector.observer, "observe_run", None)
        if observe is not None and (report.counts or kind != "webhook"):
            observe(report, time.monotonic() - started)
        if report.counts or kind != "webhook":
            log.info(
                "flow.step",
                flow=flow.name,
                kind=kind,
                status=report.status,
                run_id=report.run_id,
                **{k: int(v) for k, v in report.counts.items()},
            )
        if report.interrupted:
            break
    return reports


def _record_crash(connector: Connector, flow: str, kind: str, exc: BaseException) -> None:
    """An unexpected exception may have left no failed run row: write one so the dashboard shows it."""
    try:
        run_id = connector.store.runs.start(flow, kind)
        connector.store.runs.finish(run_id, "failed", {}, f"{type(exc).__name__}: {describe(exc)}")
    except Exception:  # the store itself may be what failed
        log.exception("flow.crash_not_recorded", flow=flow)
