"""One flow job of the daemon: ``engine.run_flow`` (outbound, write-back, inbox) and its log lines."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine import Connector, FlowRun, RunReport, run_flow
from ml_connector.engine.flows import WEBHOOK

log = structlog.get_logger("ml_connector.runner")

FlowJob = Callable[[Connector, FlowConfig, threading.Event], list[RunReport]]


def run_flow_job(connector: Connector, flow: FlowConfig, stop: threading.Event) -> list[RunReport]:
    """Run one flow end to end; returns what ran. Never raises for a foreseeable or unforeseen failure."""
    run = run_flow(connector, flow, stop=stop)
    log_flow_run(run)
    return run.reports


def log_flow_run(run: FlowRun) -> None:
    if run.busy:  # a CLI sync or replay of this flow is running: skip this tick, the next one catches up
        log.info("flow.skipped", flow=run.flow, reason=run.steps[0].report.error)
        return
    for step in run.steps:
        error = step.error
        if error is not None and step.crashed:
            log.error("flow.crashed", flow=run.flow, kind=step.kind, error_class=type(error).__name__, exc_info=error)
        elif error is not None:
            log.error(
                "flow.failed", flow=run.flow, kind=step.kind, error_class=type(error).__name__, error=step.report.error
            )
        elif step.report.counts or step.kind != WEBHOOK:
            report = step.report
            counts = {k: int(v) for k, v in report.counts.items()}
            log.info("flow.step", flow=run.flow, kind=step.kind, status=report.status, run_id=report.run_id, **counts)
    if run.lease_lost:
        log.error("flow.lease_lost", flow=run.flow, fix="check the store's health; the next run completes the rest")
    if run.stopped_before is not None:
        log.info("flow.stopped", flow=run.flow, before=run.stopped_before)
