"""runner.kind procrastinate on a real PostgreSQL: schema, deferral with queueing locks, the worker's tasks under
their locks, fairness between connections, stalled-job rescue and the queue metrics."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import wait_until
from prometheus_client import CollectorRegistry, generate_latest

from integration.runner.simenv import empty_queue_database, example_config
from ml_connector.config.loader import validate
from ml_connector.config.models import ConnectorConfig, FlowConfig
from ml_connector.engine import Connector, RunReport
from ml_connector.runner.jobqueue import FLOW_TASK, JobQueue, conninfo, ensure_schema
from ml_connector.runner.jobworker import JobWorker, WorkerOptions, retry_stalled_jobs
from ml_connector.runner.queuemetrics import register_queue_metrics
from ml_connector.store import Store

pytestmark = pytest.mark.postgres


@pytest.fixture
def dsn() -> Iterator[str]:
    yield empty_queue_database()


def _connector(dsn: str, tmp_path: Path) -> Connector:
    data = example_config()  # nothing is sent to IFS or Jira: the flow job is injected
    data["ifs"].update(url="http://127.0.0.1:9", realm="mlc", client_id="ml-connector", client_secret="s")
    data["jira"].update(url="http://127.0.0.1:9")
    data["jira"]["auth"] = {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    data["store"] = {"url": dsn}
    data["runner"] = {"kind": "procrastinate"}
    config = validate(ConnectorConfig, data)
    return Connector(config=config, store=Store.open(dsn))


class Recorder:
    """An injected flow job: records each run (connection via the connector's id) and can hold one open."""

    def __init__(self, connectors: dict[str, Connector]) -> None:
        self.names = {id(c): name for name, c in connectors.items()}
        self.runs: list[tuple[str, str, float, float]] = []
        self.hold: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def __call__(self, connector: Connector, flow: FlowConfig, stop: threading.Event) -> list[RunReport]:
        name = self.names[id(connector)]
        begin = time.monotonic()
        self.started.setdefault(f"{name}:{flow.name}", threading.Event()).set()
        gate = self.hold.get(name)
        if gate is not None:
            gate.wait(30)
        with self.lock:
            self.runs.append((name, flow.name, begin, time.monotonic()))
        return []


def _start(worker: JobWorker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def _status(dsn: str) -> dict[str, int]:
    with psycopg.connect(conninfo(dsn)) as conn:
        rows = conn.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1").fetchall()
    return {status: int(n) for status, n in rows}


def test_the_schema_is_applied_once_and_a_waiting_flow_run_refuses_a_second(dsn: str) -> None:
    assert ensure_schema(dsn) is True
    assert ensure_schema(dsn) is False  # idempotent: `migrate`, `run` and every worker call it
    registry = CollectorRegistry()
    queue = JobQueue(dsn, registry=registry)
    try:
        assert queue.defer_flow("default", "purchase_orders") is True
        assert queue.defer_flow("default", "purchase_orders") is False  # the pile-up is refused quietly
        assert queue.defer_flow("default", "work_orders") is True
        assert queue.defer_flow("acme", "purchase_orders") is True  # another connection's flow is its own key
    finally:
        queue.close()
    text = generate_latest(registry).decode()
    assert 'mlc_jobs_deferred_total{result="refused",task="mlc.flow_run"} 1.0' in text
    assert 'mlc_jobs_deferred_total{result="deferred",task="mlc.flow_run"} 3.0' in text
    with psycopg.connect(conninfo(dsn)) as conn:
        query = "SELECT queue_name, lock, queueing_lock, args FROM procrastinate_jobs ORDER BY id"
        rows = conn.execute(query).fetchall()
    assert rows[0] == (
        "default",
        "default:purchase_orders",
        "default:purchase_orders",
        {"connection": "default", "flow": "purchase_orders"},
    )
    assert rows[2][0] == "acme"


def test_a_slow_connection_keeps_at_most_its_share_of_a_worker_so_another_is_not_starved(
    dsn: str, tmp_path: Path
) -> None:
    ensure_schema(dsn)
    connectors = {"slow": _connector(dsn, tmp_path), "fast": _connector(dsn, tmp_path)}
    recorder = Recorder(connectors)
    options = WorkerOptions(concurrency=2, poll_interval=0.2, postpone_seconds=0.5)  # a share of 1 slot
    worker = JobWorker(dsn, connectors.__getitem__, options, job=recorder)
    queue = JobQueue(dsn)
    try:
        thread = _start(worker)
        queue.defer_flow("fast", "purchase_orders")  # the deployment serves two connections
        wait_until(lambda: len(recorder.runs) == 1, timeout=20, what="the first fast run")
        recorder.hold["slow"] = threading.Event()
        for flow in ("purchase_orders", "work_orders"):  # two slow runs due: only one may take a slot
            queue.defer_flow("slow", flow)
        wait_until(lambda: len(recorder.started) == 2, timeout=20, what="a slow run to start")
        for _ in range(3):  # the second slot stays free for the fast connection while the slow run holds
            before = len(recorder.runs)
            queue.defer_flow("fast", "work_orders")
            wait_until(lambda b=before: len(recorder.runs) > b, timeout=20, what="a fast run beside the slow one")
        assert [r for r in recorder.runs if r[0] == "slow"] == []
        assert len([k for k in recorder.started if k.startswith("slow:")]) == 1  # the other slow run was postponed
        recorder.hold["slow"].set()
        wait_until(lambda: sum(1 for r in recorder.runs if r[0] == "slow") == 2, timeout=30, what="both slow runs")
    finally:
        worker.request_stop()
        thread.join(30)
        queue.close()
    assert _status(dsn).get("todo", 0) == 0 and _status(dsn).get("failed", 0) == 0


def test_one_connection_alone_may_use_every_slot(dsn: str, tmp_path: Path) -> None:
    ensure_schema(dsn)
    connectors = {"default": _connector(dsn, tmp_path)}
    recorder = Recorder(connectors)
    recorder.hold["default"] = threading.Event()
    worker = JobWorker(dsn, connectors.__getitem__, WorkerOptions(concurrency=2, poll_interval=0.2), job=recorder)
    queue = JobQueue(dsn)
    try:
        thread = _start(worker)
        for flow in ("purchase_orders", "work_orders"):
            queue.defer_flow("default", flow)
        wait_until(lambda: len(recorder.started) == 2, timeout=20, what="both runs at once")
        recorder.hold["default"].set()
        wait_until(lambda: _status(dsn) == {"succeeded": 2}, timeout=20, what="both jobs done, none postponed")
    finally:
        worker.request_stop()
        thread.join(30)
        queue.close()


def test_two_workers_never_run_one_flow_at_once_and_a_slow_connection_does_not_starve_another(
    dsn: str, tmp_path: Path
) -> None:
    ensure_schema(dsn)
    slow, fast = _connector(dsn, tmp_path), _connector(dsn, tmp_path)
    recorder = Recorder({"slow": slow, "fast": fast})
    recorder.hold["slow"] = threading.Event()
    connectors = {"slow": slow, "fast": fast}
    options = WorkerOptions(concurrency=2, stalled_after=3, poll_interval=0.2)
    workers = [JobWorker(dsn, connectors.__getitem__, options, job=recorder) for _ in range(2)]
    queue = JobQueue(dsn)
    try:
        threads = [_start(w) for w in workers]
        for flow in ("purchase_orders", "work_orders"):
            queue.defer_flow("slow", flow)
        wait_until(lambda: len(recorder.started) == 2, timeout=20, what="both slow flows to start")
        # The slow connection holds one slot of each worker (its share of 2 is 1): fast runs are not held back.
        for _ in range(3):
            queue.defer_flow("fast", "purchase_orders")
            before = len(recorder.runs)
            wait_until(lambda b=before: len(recorder.runs) > b, timeout=20, what="a fast run while slow ones hold")
        # One waiting run of a slow flow at most; it starts only when the running one ends (the lock).
        assert queue.defer_flow("slow", "purchase_orders") is True
        assert queue.defer_flow("slow", "purchase_orders") is False
        recorder.hold["slow"].set()
        wait_until(lambda: sum(1 for r in recorder.runs if r[0] == "slow") == 3, timeout=30, what="slow runs")
    finally:
        for w in workers:
            w.request_stop()
        for t in threads:
            t.join(30)
        queue.close()
    for name in ("slow", "fast"):
        for flow in ("purchase_orders", "work_orders"):
            spans = sorted((b, e) for n, f, b, e in recorder.runs if (n, f) == (name, flow))
            assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans)), (name, flow)
    assert _status(dsn).get("failed", 0) == 0 and _status(dsn).get("todo", 0) == 0


def test_a_dead_workers_job_is_put_back_and_runs_again(dsn: str, tmp_path: Path) -> None:
    """A worker SIGKILLed mid-job leaves its job 'doing' with a silent heartbeat; the rescue puts it back."""
    ensure_schema(dsn)
    queue = JobQueue(dsn)
    queue.defer_flow("default", "purchase_orders")
    queue.close()
    with psycopg.connect(conninfo(dsn)) as conn:  # what a killed worker leaves behind
        worker_id = conn.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id"
        ).fetchone()
        assert worker_id is not None
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s", (worker_id[0],))
    assert _status(dsn) == {"doing": 1}

    async def rescue() -> int:
        from procrastinate import App, PsycopgConnector

        app = App(connector=PsycopgConnector(conninfo=conninfo(dsn)))
        async with app.open_async():
            return await retry_stalled_jobs(app, 30)

    assert asyncio.run(rescue()) == 1
    assert _status(dsn) == {"todo": 1}
    assert asyncio.run(rescue()) == 0  # nothing stalled any more
    connector = _connector(dsn, tmp_path)
    recorder = Recorder({"default": connector})
    worker = JobWorker(dsn, {"default": connector}.__getitem__, WorkerOptions(concurrency=1, poll_interval=0.2))
    worker.job = recorder
    thread = _start(worker)
    try:
        wait_until(lambda: len(recorder.runs) == 1, timeout=20, what="the rescued job to run")
    finally:
        worker.request_stop()
        thread.join(30)
    assert _status(dsn) == {"succeeded": 1}


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_queue_metrics_show_depth_outcomes_latency_and_duration_per_connection(dsn: str, tmp_path: Path) -> None:
    ensure_schema(dsn)
    connector = _connector(dsn, tmp_path)
    recorder = Recorder({"default": connector})
    queue = JobQueue(dsn)
    queue.defer_flow("default", "purchase_orders")
    queue.defer_flow("default", "work_orders")
    queue.defer_flow("other", "purchase_orders")  # another connection's queue: not this connection's depth
    registry = CollectorRegistry()
    register_queue_metrics(registry, connector.store.engine, "default", "default")
    before = generate_latest(registry).decode()
    assert 'mlc_jobs{connection="default",status="todo",task="mlc.flow_run"} 2.0' in before
    assert 'connection="other"' not in before and "queue=" not in before
    waiting = registry.get_sample_value("mlc_job_oldest_waiting_seconds", {"connection": "default"})
    assert waiting is not None and 0 <= waiting < 20
    recorder.hold["default"] = threading.Event()
    options = WorkerOptions(concurrency=2, poll_interval=0.2, queues=["default"], per_connection=2)
    worker = JobWorker(dsn, {"default": connector}.__getitem__, options)
    worker.job = recorder
    thread = _start(worker)
    try:
        wait_until(lambda: len(recorder.started) == 2, timeout=20, what="both jobs to start")
        time.sleep(0.3)  # the runs take at least this long: their duration shows it
        recorder.hold["default"].set()
        wait_until(lambda: _status(dsn) == {"succeeded": 2, "todo": 1}, timeout=20, what="both jobs to succeed")
    finally:
        worker.request_stop()
        thread.join(30)
        queue.close()
    after = generate_latest(registry).decode()
    assert f'mlc_jobs{{connection="default",status="succeeded",task="{FLOW_TASK}"}} 2.0' in after
    assert f'mlc_jobs_started_recently{{connection="default",task="{FLOW_TASK}"}} 2.0' in after
    assert registry.get_sample_value("mlc_job_oldest_waiting_seconds", {"connection": "default"}) == 0.0
    latency = _samples(registry, "mlc_job_start_latency_seconds")
    assert {dict(k)["quantile"] for k in latency} == {"0.5", "0.95", "1"}
    assert all(0 <= v < 20 for v in latency.values()), latency
    duration = _samples(registry, "mlc_job_duration_seconds")
    assert len(duration) == 3 and all(0.3 <= v < 30 for v in duration.values()), duration


def test_queue_metrics_of_two_connections_merge_without_counting_a_job_twice(dsn: str, tmp_path: Path) -> None:
    from ml_connector.metrics import Metrics, render_connections

    ensure_schema(dsn)
    connector = _connector(dsn, tmp_path)
    queue = JobQueue(dsn)
    try:
        queue.defer_flow("acme", "purchase_orders")
        queue.defer_flow("beta", "purchase_orders")
        queue.defer_flow("beta", "work_orders")
    finally:
        queue.close()
    metrics = {name: Metrics(connection=name) for name in ("acme", "beta")}
    for name, each in metrics.items():
        register_queue_metrics(each.registry, connector.store.engine, name, name)
    text = render_connections(metrics).decode()
    depth = [line for line in text.splitlines() if line.startswith("mlc_jobs{")]
    assert sorted(depth) == [
        'mlc_jobs{connection="acme",status="todo",task="mlc.flow_run"} 1.0',
        'mlc_jobs{connection="beta",status="todo",task="mlc.flow_run"} 2.0',
    ]


def test_queue_metrics_are_absent_not_an_error_when_the_database_is_gone(dsn: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    registry = CollectorRegistry()
    register_queue_metrics(registry, create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none"), "a", "a")
    assert "mlc_jobs" not in generate_latest(registry).decode()


def test_the_web_apps_inbox_wakeups_and_replays_become_jobs(dsn: str, tmp_path: Path) -> None:
    from ml_connector.metrics import Metrics
    from ml_connector.runner.jobqueue import QueuedWork

    ensure_schema(dsn)
    connector = _connector(dsn, tmp_path)
    queue = JobQueue(dsn)
    work = QueuedWork(connector, Metrics(), queue)
    try:
        work.start()  # no threads: nothing runs in the web process
        assert work._threads == []
        work.wake_inbox()
        work.wake_inbox()  # a burst of deliveries: one waiting inbox job does them all
        work.replay(["purchase_orders", "work_orders"])
    finally:
        queue.close()
    with psycopg.connect(conninfo(dsn)) as conn:
        rows = conn.execute("SELECT task_name, lock, args FROM procrastinate_jobs ORDER BY id").fetchall()
    assert rows == [
        ("mlc.inbox", "default:webhook-inbox", {"connection": "default"}),
        ("mlc.replay", "default:purchase_orders", {"connection": "default", "flow": "purchase_orders"}),
        ("mlc.replay", "default:work_orders", {"connection": "default", "flow": "work_orders"}),
    ]


def _stall(dsn: str) -> None:
    """Make every job 'doing' for a worker whose last heartbeat is an hour old (what a SIGKILL leaves)."""
    with psycopg.connect(conninfo(dsn)) as conn:
        row = conn.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id"
        ).fetchone()
        assert row is not None
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s", (row[0],))


async def _rescue_twice(dsn: str) -> list[int]:
    """Two workers' rescues racing over the same stalled jobs."""
    from procrastinate import App, PsycopgConnector

    apps = [App(connector=PsycopgConnector(conninfo=conninfo(dsn))) for _ in range(2)]
    async with apps[0].open_async(), apps[1].open_async():
        return list(await asyncio.gather(*(retry_stalled_jobs(app, 30) for app in apps)))


def test_racing_rescues_put_a_stalled_job_back_once_and_never_close_it(dsn: str) -> None:
    ensure_schema(dsn)
    queue = JobQueue(dsn)
    for flow in ("purchase_orders", "work_orders", "third"):
        queue.defer_flow("default", flow)
    queue.close()
    _stall(dsn)
    for _ in range(5):
        assert sum(asyncio.run(_rescue_twice(dsn))) == 3
        assert _status(dsn) == {"todo": 3}  # each retried once; the losing rescue closed nothing
        _stall(dsn)


def test_a_stalled_job_whose_flow_already_waits_is_closed_and_the_waiting_one_kept(dsn: str) -> None:
    ensure_schema(dsn)
    queue = JobQueue(dsn)
    queue.defer_flow("default", "purchase_orders")
    _stall(dsn)
    assert queue.defer_flow("default", "purchase_orders") is True  # the schedule deferred the next run meanwhile
    queue.close()
    assert sum(asyncio.run(_rescue_twice(dsn))) == 0
    assert _status(dsn) == {"failed": 1, "todo": 1}


def test_a_stop_ends_the_run_at_a_safe_point_and_queues_the_rest_again(dsn: str, tmp_path: Path) -> None:
    ensure_schema(dsn)
    connector = _connector(dsn, tmp_path)
    running = threading.Event()

    def until_stopped(c: Connector, flow: FlowConfig, stop: threading.Event) -> list[RunReport]:
        running.set()
        assert stop.wait(20)  # a run's safe point: it sees the stop and returns
        return []

    worker = JobWorker(dsn, {"default": connector}.__getitem__, WorkerOptions(poll_interval=0.2), job=until_stopped)
    queue = JobQueue(dsn)
    try:
        thread = _start(worker)
        queue.defer_flow("default", "purchase_orders")
        assert running.wait(20)
        started = time.monotonic()
        worker.request_stop()  # what SIGTERM calls
        thread.join(20)
        assert not thread.is_alive() and time.monotonic() - started < 5
    finally:
        queue.close()
    with psycopg.connect(conninfo(dsn)) as conn:
        rows = conn.execute("SELECT status::text, args->>'flow' FROM procrastinate_jobs ORDER BY id").fetchall()
    assert rows == [("succeeded", "purchase_orders"), ("todo", "purchase_orders")]  # the rest waits for a worker


def test_inbox_jobs_run_the_engines_inbox_and_a_job_for_an_unknown_connection_fails(dsn: str, tmp_path: Path) -> None:
    from ml_connector.errors import ConfigError
    from ml_connector.runner.jobworker import connection_resolver

    ensure_schema(dsn)
    connector = _connector(dsn, tmp_path)
    resolve = connection_resolver(None, [connector.config])
    with pytest.raises(ConfigError, match="no connection named 'acme'"):
        resolve("acme")
    worker = JobWorker(dsn, resolve, WorkerOptions(poll_interval=0.2))  # the CLI's resolver: today's one connection
    queue = JobQueue(dsn)
    try:
        thread = _start(worker)
        queue.defer_inbox("default")
        queue.defer_inbox("acme")  # a connection this deployment does not know (a config removed it)
        wait_until(lambda: _status(dsn) == {"succeeded": 1, "failed": 1}, timeout=20, what="both inbox jobs to end")
    finally:
        worker.request_stop()
        thread.join(30)
        queue.close()
    assert connector.store.leases.holder("inbox") is None  # the engine's inbox lease was taken and given back
