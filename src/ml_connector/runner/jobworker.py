"""``ml-connector worker``: runs the queued jobs (flow runs, webhook inbox, replays) of ``runner.kind: procrastinate``.

A flow job calls the local daemon's entry (``runner.jobs.run_flow_job``) under procrastinate's lock
``"<connection>:<flow>"``. A worker killed mid-job loses nothing: every worker sends a heartbeat, and every worker
(on start and then every ``stalled_after / 2`` seconds) puts the jobs of a worker silent for ``stalled_after`` back
in the queue; the engine's intent/reconcile path makes the rerun create nothing twice. SIGTERM stops runs at their
next safe point; a run cut short that way defers itself again.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector, process_inbox, replay_flows
from ml_connector.errors import ConfigError
from ml_connector.runner.connector import build_connector
from ml_connector.runner.jobqueue import (
    FLOW_TASK,
    INBOX_KEY,
    INBOX_TASK,
    REPLAY_TASK,
    JobQueue,
    conninfo,
    ensure_schema,
)
from ml_connector.runner.jobs import FlowJob, log_flow_run, run_flow_job

log = structlog.get_logger("ml_connector.runner")

Resolver = Callable[[str], Connector]  # connection name → its connector (one per process, built on first use)
FINISHED_JOBS_KEPT_HOURS = 7 * 24  # finished jobs stay this long for /metrics and `procrastinate` inspection


@dataclass
class WorkerOptions:
    concurrency: int = 4
    queues: list[str] | None = None  # None: every connection's queue
    stalled_after: float = 30.0
    # LISTEN/NOTIFY wakes a worker for a new job, not for a lock freed: a job deferred while its flow still runs
    # waits for this poll.
    poll_interval: float = 1.0
    per_connection: int | None = None  # most slots one connection may hold here; None: half the slots (rounded up)
    postpone_seconds: float = 2.0  # a job over its connection's share goes back to the queue this long

    def share(self) -> int:
        return self.per_connection or max(1, (self.concurrency + 1) // 2)


class Connections:
    """The connectors this worker has resolved, built once each; ``stop_all`` reaches every one of them."""

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self._built: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Connector:
        with self._lock:
            connector = self._built.get(name)
            if connector is None:
                connector = self._built[name] = self._resolve(name)
            return connector

    def stop_all(self) -> None:
        with self._lock:
            for connector in self._built.values():
                connector.stopping.set()

    def close(self) -> None:
        with self._lock:
            for connector in self._built.values():
                connector.close()
            self._built.clear()


class JobWorker:
    """One worker process: procrastinate's worker with the connector's tasks, stalled-job rescue and clean stop."""

    def __init__(
        self,
        store_url: str,
        resolve: Resolver,
        options: WorkerOptions | None = None,
        *,
        job: FlowJob = run_flow_job,
    ) -> None:
        self.store_url = store_url
        self.options = options or WorkerOptions()
        self.connections = Connections(resolve)
        self.job = job
        self.stop_event = threading.Event()
        self._requeue: JobQueue | None = None  # opened by run(), after the schema check has reached the database
        self._worker: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: Counter[str] = Counter()  # connection → jobs running in this process
        self._running_lock = threading.Lock()

    # -- tasks -----------------------------------------------------------------------------------------------------

    def run_flow(self, connection: str, flow: str) -> str:
        with self._share(FLOW_TASK, connection, flow) as admitted:
            if not admitted:
                return "postponed"
            connector = self.connections.get(connection)
            if connector.store.controls.get(flow).get("paused"):
                log.info("flow.skipped", connection=connection, flow=flow, reason="paused", trigger="job")
                return "paused"
            log.info("flow.start", connection=connection, flow=flow, trigger="job")
            self.job(connector, connector.config.flow(flow), self.stop_event)
            return self._after_stop(connection, flow)

    def replay(self, connection: str, flow: str) -> str:
        with self._share(REPLAY_TASK, connection, flow) as admitted:
            if not admitted:
                return "postponed"
            for run in replay_flows(self.connections.get(connection), [flow], stop=self.stop_event):
                log_flow_run(run)
            return self._after_stop(connection, flow)

    def inbox(self, connection: str) -> str:
        with self._share(INBOX_TASK, connection, INBOX_KEY) as admitted:
            if not admitted:
                return "postponed"
            report = process_inbox(self.connections.get(connection), stop=self.stop_event)
            return "busy" if report is None else report.status

    @contextmanager
    def _share(self, task: str, connection: str, key: str) -> Iterator[bool]:
        """Fairness: when the deployment serves several connections, one holds at most ``share()`` of this worker's
        slots; a job over it goes back to the queue for a moment (behind the others' jobs), so a slow connection
        cannot starve the rest. A single connection may use every slot."""
        with self._running_lock:
            over = self._running[connection] >= self.options.share()
            self._running[connection] += 1
        admitted = not over or not self.requeue.others_served(connection)
        if not admitted:
            with self._running_lock:
                self._running[connection] -= 1
            log.info("job.postponed", connection=connection, task=task, key=key, reason="connection share in use")
            self.requeue.defer(task, connection, key, delay=self.options.postpone_seconds, **_args(task, key))
            yield False
            return
        try:
            yield True
        finally:
            with self._running_lock:
                self._running[connection] -= 1

    @property
    def requeue(self) -> JobQueue:
        """Defers from inside jobs: a run cut short by a stop, a job over its connection's share."""
        if self._requeue is None:
            raise RuntimeError("JobWorker.run() opens the queue before any job runs")
        return self._requeue

    def _after_stop(self, connection: str, flow: str) -> str:
        if not self.stop_event.is_set():
            return "done"
        self.requeue.defer_flow(connection, flow)  # the rest of this run goes to the next worker
        return "stopped"

    # -- life cycle ------------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """SIGTERM: runs stop at their next safe point; no new job is taken."""
        if not self.stop_event.is_set():
            log.info("worker.stopping")
        self.stop_event.set()
        self.connections.stop_all()
        if self._worker is not None:
            self._worker.stop()  # safe from any thread: it wakes the worker's loop itself

    def run(self) -> None:
        """Until SIGTERM/SIGINT (or ``request_stop``): apply the schema if missing, then take jobs."""
        ensure_schema(self.store_url)
        self._requeue = JobQueue(self.store_url)
        try:
            asyncio.run(self._main())
        finally:
            self._requeue.close()
            self.connections.close()
            log.info("worker.stopped")

    async def _main(self) -> None:
        from procrastinate import App, PsycopgConnector
        from procrastinate.worker import Worker

        loop = asyncio.get_running_loop()
        self._loop = loop
        # Each running job holds a thread: the default executor (cores + 4) would cap the concurrency.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=self.options.concurrency + 2))
        size = self.options.concurrency + 3  # jobs finishing, heartbeat, LISTEN and the rescue
        app = App(connector=PsycopgConnector(conninfo=conninfo(self.store_url), min_size=2, max_size=size))
        self._register(app)
        if threading.current_thread() is threading.main_thread():  # tests run a worker in a thread
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        async with app.open_async():
            self._worker = Worker(
                app=app,
                queues=self.options.queues,
                concurrency=self.options.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=max(0.5, self.options.stalled_after / 3),
                stalled_worker_timeout=self.options.stalled_after,
                fetch_job_polling_interval=self.options.poll_interval,
                name="mlc-worker",
            )
            if self.stop_event.is_set():
                return
            rescue = asyncio.create_task(self._rescue_loop(app), name="mlc-rescue")
            log.info("worker.started", concurrency=self.options.concurrency, queues=self.options.queues or "all")
            try:
                await self._worker.run()
            finally:
                rescue.cancel()
                await asyncio.gather(rescue, return_exceptions=True)

    def _register(self, app: Any) -> None:
        app.task(name=FLOW_TASK)(self.run_flow)
        app.task(name=REPLAY_TASK)(self.replay)
        app.task(name=INBOX_TASK)(self.inbox)

    async def _rescue_loop(self, app: Any) -> None:
        every = max(1.0, self.options.stalled_after / 2)
        cleaned = 0.0
        while True:
            try:
                await retry_stalled_jobs(app, self.options.stalled_after)
                if time.monotonic() - cleaned > 3600:
                    await app.job_manager.delete_old_jobs(nb_hours=FINISHED_JOBS_KEPT_HOURS, include_failed=True)
                    cleaned = time.monotonic()
            except Exception as exc:  # the store unreachable for a moment: try again next round
                log.warning("worker.rescue_failed", error_class=type(exc).__name__)
            await asyncio.sleep(every)


def _args(task: str, key: str) -> dict[str, str]:
    return {} if task == INBOX_TASK else {"flow": key}


async def retry_stalled_jobs(app: Any, stalled_after: float) -> int:
    """Put the running jobs of silent workers back in the queue; returns how many. A job whose flow already has a
    waiting job (same queueing lock) is closed as failed instead: the waiting one does that flow's work."""
    from procrastinate.exceptions import ConnectorException, UniqueViolation
    from procrastinate.jobs import Status

    manager = app.job_manager
    retried = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        try:
            try:
                await manager.retry_job(job)
            except UniqueViolation:  # still 'doing': only this job is closed, never the waiting one
                await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
                log.warning("job.stalled_superseded", job_id=job.id, lock=job.lock)
                continue
        except ConnectorException:  # no longer 'doing': another worker's rescue took it first
            log.info("job.stalled_taken", job_id=job.id, lock=job.lock)
        else:
            retried += 1
            log.warning("job.stalled_retried", job_id=job.id, task=job.task_name, lock=job.lock)
    return retried


def connection_resolver(config_path: Path | None, configs: Sequence[ConnectorConfig]) -> Resolver:
    """The worker's resolver: a job's connection name is looked up among the file's connections."""
    by_name = {config.name: config for config in configs}

    def resolve(name: str) -> Connector:
        config = by_name.get(name)
        if config is None:
            known = ", ".join(by_name)
            raise ConfigError(f"no connection named {name!r} in this configuration (configured: {known})", path="name")
        return build_connector(config_path, config)

    return resolve
