"""Background work started with the web app: the webhook inbox processor and dashboard jobs (replay).

The webhook endpoint only stores the delivery and wakes the inbox thread, so Jira gets its answer at once. The inbox
thread runs the engine's one inbox processor (``engine.process_inbox``, which holds the store lease ``inbox``).
Dashboard jobs run one at a time on a second thread, through the CLI's code path (``engine.replay_flows``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import structlog

from ml_connector.engine import Connector, RunReport, process_inbox, replay_flows
from ml_connector.errors import ConnectorError
from ml_connector.metrics import Metrics

log = structlog.get_logger("ml_connector.web")


class BackgroundWork:
    """Owns the inbox thread and the job thread; ``start`` is idempotent, ``stop`` joins both."""

    def __init__(
        self,
        connector: Connector,
        metrics: Metrics,
        *,
        poll_seconds: float = 30.0,
        error_backoff: float = 5.0,
    ) -> None:
        self.connector = connector
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.error_backoff = error_backoff
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._busy = 0
        self._busy_lock = threading.Condition()

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._start_lock:
            if self._threads and all(t.is_alive() for t in self._threads):
                return
            self.stop_event.clear()
            self._threads = [
                threading.Thread(target=self._named(self._inbox_loop), name="mlc-web-inbox", daemon=True),
                threading.Thread(target=self._named(self._job_loop), name="mlc-web-jobs", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def _named(self, loop: Callable[[], None]) -> Callable[[], None]:
        """``loop`` with every log line of its thread naming the connection (a thread starts with no context)."""

        def run() -> None:
            structlog.contextvars.bind_contextvars(connection=self.connector.config.name)
            loop()

        return run

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the threads to finish; a run in flight stops at its next safe point (``stop_event``)."""
        self.stop_event.set()
        self._wake.set()
        self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    # -- inbox -----------------------------------------------------------------------------------------------------

    def wake_inbox(self) -> None:
        self.start()
        self._wake.set()

    def process_inbox_now(self) -> RunReport | None:
        """Drain pending inbox events once; None when another thread or process is already doing it."""
        return process_inbox(self.connector, stop=self.stop_event, observe=self.metrics.observe_run)

    def _inbox_loop(self) -> None:
        while not self.stop_event.is_set():
            self._wake.wait(self.poll_seconds)
            with self._busy_lock:  # busy before the wake flag drops, so wait_idle never sees a gap
                self._busy += 1
                self._wake.clear()
            if self.stop_event.is_set():
                self._idle_one()
                return
            try:
                self.process_inbox_now()
            except ConnectorError as exc:  # the events stay pending; try again after a pause
                log.warning("web.inbox_failed", error=str(exc), error_class=type(exc).__name__)
                self.stop_event.wait(self.error_backoff)
                self._wake.set()
            except Exception as exc:
                log.error("web.inbox_crashed", error_class=type(exc).__name__)
                self.stop_event.wait(self.error_backoff)
                self._wake.set()
            finally:
                self._idle_one()

    # -- jobs ------------------------------------------------------------------------------------------------------

    def submit(self, job: Callable[[], None]) -> None:
        self.start()
        with self._busy_lock:
            self._busy += 1
        self._jobs.put(job)

    def replay(self, flows: list[str]) -> None:
        """Send the re-queued records of ``flows`` in the background (``engine.replay_flows``, as the CLI does)."""

        def job() -> None:
            for run in replay_flows(self.connector, flows, stop=self.stop_event, observe=self.metrics.observe_run):
                for step in run.steps:
                    error = step.error
                    if error is not None and step.crashed:
                        log.error("web.job_crashed", flow=run.flow, error_class=type(error).__name__)
                    elif error is not None:  # e.g. FlowBusy: a sync runs the flow; the records go with its next run
                        log.warning(
                            "web.job_failed", flow=run.flow, error=step.report.error, error_class=type(error).__name__
                        )
                    else:
                        report = step.report
                        log.info("web.replay_done", flow=run.flow, status=report.status, counts=dict(report.counts))

        self.submit(job)

    def _job_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except ConnectorError as exc:
                log.warning("web.job_failed", error=str(exc), error_class=type(exc).__name__)
            except Exception as exc:
                log.error("web.job_crashed", error_class=type(exc).__name__)
            finally:
                self._idle_one()

    def _idle_one(self) -> None:
        with self._busy_lock:
            self._busy = max(0, self._busy - 1)
            self._busy_lock.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Tests: wait until no job is queued or running and the inbox thread is not processing."""
        deadline = time.monotonic() + timeout
        with self._busy_lock:
            while self._busy > 0 or self._wake.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._busy_lock.wait(min(remaining, 0.05))
            return True
