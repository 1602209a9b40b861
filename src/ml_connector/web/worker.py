"""Background work started with the web app: the webhook inbox processor and dashboard jobs (replay).

The webhook endpoint only stores the delivery and wakes the inbox thread, so Jira gets its answer at once. One
thread drains the inbox; an in-process lock and a store lease (``inbox``) make sure only one ``process_inbox`` runs at
a time, across threads and across processes sharing the database. Dashboard jobs run one at a time on a second
thread, through exactly the code path of the CLI (``OutboundSync(...).run(queue_only=True)`` for replay).
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import structlog

from ml_connector.engine import Connector, OutboundSync, RunReport, flow_lock, process_inbox
from ml_connector.errors import ConnectorError
from ml_connector.metrics import Metrics

log = structlog.get_logger("ml_connector.web")

INBOX_LEASE = "inbox"


class BackgroundWork:
    """Owns the inbox thread and the job thread; ``start`` is idempotent, ``stop`` joins both."""

    def __init__(
        self,
        connector: Connector,
        metrics: Metrics,
        *,
        poll_seconds: float = 30.0,
        error_backoff: float = 5.0,
        lease_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self.connector = connector
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.error_backoff = error_backoff
        self.lease_ttl = lease_ttl
        self.holder = f"web:{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._inbox_lock = threading.Lock()
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
                threading.Thread(target=self._inbox_loop, name="mlc-web-inbox", daemon=True),
                threading.Thread(target=self._job_loop, name="mlc-web-jobs", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

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
        if not self._inbox_lock.acquire(blocking=False):
            return None
        try:
            store = self.connector.store
            if not store.leases.acquire(INBOX_LEASE, self.holder, self.lease_ttl):
                return None
            try:
                total: RunReport | None = None
                while not self.stop_event.is_set():
                    started = time.monotonic()
                    report = process_inbox(self.connector, stop=self.stop_event)
                    if not report.counts.get("events"):
                        break
                    self.metrics.observe_run(report, time.monotonic() - started)
                    total = report
                    store.leases.acquire(INBOX_LEASE, self.holder, self.lease_ttl)  # renew between batches
                return total
            finally:
                store.leases.release(INBOX_LEASE, self.holder)
        finally:
            self._inbox_lock.release()

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
        """Queue ``OutboundSync(...).run(queue_only=True)`` for each flow (records must be re-queued already)."""

        def job() -> None:
            for name in flows:
                if self.stop_event.is_set():
                    return
                started = time.monotonic()
                with flow_lock(self.connector.store, name):  # never beside a scheduled or CLI run of the flow
                    report = OutboundSync(self.connector, self.connector.config.flow(name), stop=self.stop_event).run(
                        queue_only=True
                    )
                self.metrics.observe_run(report, time.monotonic() - started)
                log.info("web.replay_done", flow=name, status=report.status, counts=dict(report.counts))

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
