"""``runner.kind: procrastinate``: the job queue on the PostgreSQL store, its schema, and deferring jobs.

Every job names its connection and flow (``{"connection", "flow"}``). Each connection has its own procrastinate
queue, named after it. A flow run or replay holds procrastinate's ``lock`` ``"<connection>:<flow>"`` (one worker at
a time, across machines) and is deferred with the same key as ``queueing_lock``: at most one run of a flow waits, so
schedules never pile up; a refused deferral is counted, not an error (the waiting job does the work).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterable

import structlog
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.engine import make_url

from ml_connector.config.models import ConnectorConfig, FlowConfig
from ml_connector.engine import Connector, RunReport
from ml_connector.errors import ConfigError
from ml_connector.metrics import Metrics
from ml_connector.store.db import POSTGRES_EXTRA_FIX
from ml_connector.web.worker import BackgroundWork

log = structlog.get_logger("ml_connector.runner")

FLOW_TASK = "mlc.flow_run"
INBOX_TASK = "mlc.inbox"
REPLAY_TASK = "mlc.replay"
INBOX_KEY = "webhook-inbox"  # the inbox's lock name beside the flow names of a connection
_SCHEMA_LOCK = 720202602  # serialises schema appliers (several workers starting at once)
_OTHERS = "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE queue_name <> %(queue)s) AS found"


def connection_name(config: ConnectorConfig) -> str:
    """The connection a config's jobs belong to: its queue, lock and queueing-lock prefix."""
    return config.name


def lock_key(connection: str, flow: str) -> str:
    return f"{connection}:{flow}"


def queue_for(connection: str) -> str:
    """One queue per connection: ``worker --queues`` can give a connection workers of its own."""
    return connection


def require_procrastinate() -> None:
    """A clear configuration error, not a crash, when the optional dependency is missing."""
    if importlib.util.find_spec("procrastinate") is None:
        raise ConfigError(
            f"runner.kind 'procrastinate' needs the procrastinate package: {POSTGRES_EXTRA_FIX}", path="runner.kind"
        )


def conninfo(store_url: str) -> str:
    """The libpq URL of a ``postgresql+psycopg://`` store URL (procrastinate talks to psycopg directly)."""
    url = make_url(store_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError("runner.kind 'procrastinate' needs a PostgreSQL store", path="store.url")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_schema(store_url: str) -> bool:
    """Create procrastinate's tables if they are missing; True when it did. Safe from several processes at once."""
    require_procrastinate()
    import psycopg
    from procrastinate.schema import SchemaManager

    try:
        with psycopg.connect(conninfo(store_url), connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if row is not None and row[0]:
                return False
            conn.execute(SchemaManager.get_schema())  # no parameters: psycopg sends the whole script at once
            conn.commit()
    except psycopg.OperationalError as exc:  # the worker opens the database here first: say so, no traceback
        raise ConfigError(f"cannot open the store: {exc}", path="store.url") from None
    log.info("jobqueue.schema_applied")
    return True


class JobQueue:
    """Defers jobs from the ``run`` process and its web app (a small synchronous psycopg pool)."""

    def __init__(self, store_url: str, *, registry: CollectorRegistry | None = None) -> None:
        require_procrastinate()
        from procrastinate import App, SyncPsycopgConnector

        self.app = App(connector=SyncPsycopgConnector(conninfo=conninfo(store_url), min_size=1, max_size=4))
        self.app.open()
        self.deferred = Counter(
            "mlc_jobs_deferred",
            "Jobs handed to the queue by task and result (deferred, or refused: one of that flow already waits).",
            ["task", "result"],
            registry=registry,
        )

    def close(self) -> None:
        self.app.close()

    def defer(self, task: str, connection: str, key: str, *, delay: float = 0.0, **kwargs: str) -> bool:
        """Defer ``task`` under lock and queueing lock ``<connection>:<key>`` (to start ``delay`` seconds from now);
        False when one is already waiting."""
        from procrastinate.exceptions import AlreadyEnqueued

        lock = lock_key(connection, key)
        deferrer = self.app.configure_task(
            task,
            lock=lock,
            queueing_lock=lock,
            queue=queue_for(connection),
            schedule_in={"seconds": delay} if delay > 0 else None,
        )
        try:
            job_id = deferrer.defer(connection=connection, **kwargs)
        except AlreadyEnqueued:
            self.deferred.labels(task, "refused").inc()
            log.info("job.refused", task=task, lock=lock, reason="one is already waiting")
            return False
        self.deferred.labels(task, "deferred").inc()
        log.info("job.deferred", task=task, lock=lock, job_id=job_id)
        return True

    def others_served(self, connection: str) -> bool:
        """Whether the queue holds jobs of another connection (any status: finished ones are kept for days), i.e.
        whether this deployment serves several connections and fairness must hold one back."""
        row = self.app.connector.get_sync_connector().execute_query_one(_OTHERS, queue=queue_for(connection))
        return bool(row["found"])

    def defer_flow(self, connection: str, flow: str) -> bool:
        return self.defer(FLOW_TASK, connection, flow, flow=flow)

    def defer_replay(self, connection: str, flows: Iterable[str]) -> None:
        for flow in flows:
            self.defer(REPLAY_TASK, connection, flow, flow=flow)

    def defer_inbox(self, connection: str) -> bool:
        return self.defer(INBOX_TASK, connection, INBOX_KEY)

    def flow_job(self, connector: Connector, flow: FlowConfig, _stop: threading.Event) -> list[RunReport]:
        """The scheduler's job in this mode (``runner.jobs.FlowJob``): defer the run, do not run it here."""
        self.defer_flow(connection_name(connector.config), flow.name)
        return []


def queued_work(queue: JobQueue) -> Callable[[Connector, Metrics], BackgroundWork]:
    """The web app's background work as jobs: webhook events and dashboard replays are deferred, not run here."""

    def build(connector: Connector, metrics: Metrics) -> BackgroundWork:
        return QueuedWork(connector, metrics, queue)

    return build


class QueuedWork(BackgroundWork):
    """``BackgroundWork`` whose inbox wake-ups and replays become jobs; it starts no threads of its own."""

    def __init__(self, connector: Connector, metrics: Metrics, queue: JobQueue) -> None:
        super().__init__(connector, metrics)
        self.queue = queue
        self.connection = connection_name(connector.config)

    def start(self) -> None:
        return

    def stop(self, timeout: float = 30.0) -> None:
        return

    def wake_inbox(self) -> None:
        self.queue.defer_inbox(self.connection)

    def replay(self, flows: list[str]) -> None:
        self.queue.defer_replay(self.connection, flows)


def open_job_queue(connector: Connector) -> JobQueue:
    """The ``run`` process's queue: schema applied if missing, its counters and the queue gauges on /metrics."""
    from ml_connector.runner.queuemetrics import register_queue_metrics

    assert connector.config.store.url is not None
    ensure_schema(connector.config.store.url)
    metrics = connector.observer if isinstance(connector.observer, Metrics) else None
    registry = metrics.registry if metrics is not None else None
    queue = JobQueue(connector.config.store.url, registry=registry)
    if registry is not None:
        connection = connection_name(connector.config)
        register_queue_metrics(registry, connector.store.engine, connection, queue_for(connection))
    return queue
