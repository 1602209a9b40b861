"""Running one flow: the one path the CLI (``sync``, ``replay``), the daemon's jobs and the dashboard share.

Under the flow's lease (none for a dry run, which writes nothing): outbound (or replay), write-back, then the webhook
inbox. ``stop`` is checked before each step. Errors become data, never an escaping exception: a failed step is a
``Step`` carrying its error and a failed report; a foreseeable failure (``ConnectorError``) is also counted by
``observe`` (``mlc_runs_total{status="failed"}``), an unexpected one gets a failed run row of its own so the
dashboard shows it. Callers differ only in what they show (progress bar and summary, log lines, exit code).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine.failures import describe
from ml_connector.engine.inbox import Observe, observer_of, process_inbox
from ml_connector.engine.locks import FlowBusy, flow_lock, following
from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.progress import Progress
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.writeback.sync import WritebackSync
from ml_connector.errors import ConnectorError

log = structlog.get_logger("ml_connector.engine")

OUTBOUND, REPLAY, WRITEBACK, WEBHOOK = "outbound", "replay", "writeback", "webhook"

Work = Callable[[], RunReport | None]


@dataclass(frozen=True)
class FlowOptions:
    dry_run: bool = False  # plan only: no lock, nothing written
    full: bool = False  # ignore the cursor
    queue_only: bool = False  # replay: send the re-queued records, read nothing from IFS
    writeback: bool = True  # the Jira → IFS status step (when the flow enables it)
    inbox: bool = True  # drain the webhook inbox after the flow (it is shared by all flows)
    keep_going: bool = False  # a failed step does not end the flow (the CLI reports every step's outcome)
    record_crash: bool = True  # an unexpected error gets a failed run row of its own (the CLI writes a crash file)
    preview_limit: int | None = None  # dry run: records previewed in full (None: all; counts cover every record)


@dataclass
class Step:
    kind: str
    report: RunReport  # a failed step's: flow, kind and the error, no counts
    error: BaseException | None = None

    @property
    def crashed(self) -> bool:
        return self.error is not None and not isinstance(self.error, ConnectorError)


@dataclass
class FlowRun:
    flow: str
    steps: list[Step] = field(default_factory=list)
    busy: bool = False  # another process runs the flow: nothing ran; ``steps`` holds the FlowBusy
    stopped_before: str | None = None  # the step ``stop`` kept from starting
    lease_lost: bool = False  # the flow's lease was lost while the run lasted: it stopped at its next safe point

    @property
    def reports(self) -> list[RunReport]:
        """The reports of the steps that finished (successfully or partly)."""
        return [s.report for s in self.steps if s.error is None]


def run_flow(
    connector: Connector,
    flow: FlowConfig,
    *,
    stop: threading.Event,
    options: FlowOptions = FlowOptions(),
    progress: Progress | None = None,
    observe: Observe | None = None,
) -> FlowRun:
    """Run ``flow`` once; never raises for a failure of its own. ``progress`` counts records read from IFS;
    ``observe`` (default: the connector's metrics) sees each finished run and each foreseeable failure."""
    observe = observe or observer_of(connector)
    run = FlowRun(flow.name)
    # The run's own stop: set by ``stop`` (shared with the other runs) or by losing the flow's lease, after which
    # another process may start the same flow; the run then ends at its next safe point, as on a stop.
    with following(stop) as run_stop:
        steps = _steps(connector, flow, run_stop, options, progress, observe)

        def lease_lost() -> None:
            run.lease_lost = True
            run_stop.set()

        def stopped() -> bool:  # ``stop`` itself too: the follower sees it only within its poll
            return stop.is_set() or run_stop.is_set()

        try:
            lock = nullcontext() if options.dry_run else flow_lock(connector.store, flow.name, on_lost=lease_lost)
            with lock:
                _run_steps(connector, flow.name, steps, run, stopped, options, observe)
        except FlowBusy as busy:  # raised by the lock only: a step's own FlowBusy is that step's error
            run.busy = True
            run.steps.append(Step(steps[0][0], RunReport(flow.name, steps[0][0], error=describe(busy)), busy))
    return run


def _run_steps(
    connector: Connector,
    flow: str,
    steps: list[tuple[str, Work]],
    run: FlowRun,
    stopped: Callable[[], bool],
    options: FlowOptions,
    observe: Observe | None,
) -> None:
    for kind, work in steps:
        if stopped():
            run.stopped_before = kind
            return
        step = run_step(connector, flow, kind, work, observe=observe, record_crash=options.record_crash)
        if step is None:
            continue
        run.steps.append(step)
        if step.report.interrupted or (step.error is not None and not options.keep_going):
            return


def _steps(
    connector: Connector,
    flow: FlowConfig,
    stop: threading.Event,
    options: FlowOptions,
    progress: Progress | None,
    observe: Observe | None,
) -> list[tuple[str, Work]]:
    def outbound() -> RunReport:
        sync = OutboundSync(connector, flow, stop=stop)
        return sync.run(
            dry_run=options.dry_run,
            full=options.full,
            queue_only=options.queue_only,
            progress=progress,
            preview_limit=options.preview_limit,
        )

    steps: list[tuple[str, Work]] = [(REPLAY if options.queue_only else OUTBOUND, outbound)]
    if options.writeback and flow.writeback.enabled:
        steps.append(
            (
                WRITEBACK,
                lambda: WritebackSync(connector, flow, stop=stop, progress=progress).run(dry_run=options.dry_run),
            )
        )
    if options.inbox and not options.dry_run:
        steps.append((WEBHOOK, lambda: process_inbox(connector, stop=stop, observe=observe)))
    return steps


def run_step(
    connector: Connector,
    flow: str,
    kind: str,
    work: Work,
    *,
    observe: Observe | None,
    record_crash: bool = True,
) -> Step | None:
    """One step with the error rule; None when ``work`` had nothing to report. The inbox observes its own batches."""
    started = time.monotonic()
    try:
        report = work()
    except ConnectorError as exc:  # the engine already finished its run row with the error
        failed = RunReport(flow, kind, error=describe(exc))
        if observe is not None:  # a failed run must show in mlc_runs_total{status="failed"} too
            observe(failed, time.monotonic() - started)
        return Step(kind, failed, exc)
    except Exception as exc:  # a bug in one run must not stop the others
        if record_crash:
            _record_crash(connector, flow, kind, exc)
        return Step(kind, RunReport(flow, kind, error=describe(exc)), exc)
    if report is None:
        return None
    if observe is not None and kind != WEBHOOK:
        observe(report, time.monotonic() - started)
    return Step(kind, report)


def _record_crash(connector: Connector, flow: str, kind: str, exc: BaseException) -> None:
    """An unexpected exception may have left no failed run row: write one so the dashboard shows it."""
    try:
        run_id = connector.store.runs.start(flow, kind)
        connector.store.runs.finish(run_id, "failed", {}, f"{type(exc).__name__}: {describe(exc)}")
    except Exception:  # the store itself may be what failed
        log.exception("flow.crash_not_recorded", flow=flow)
