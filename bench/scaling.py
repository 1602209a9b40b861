"""The scaling scenario's world: several connections (one IFS and one Jira simulator process each: the simulators
serve one tenant or site per process), one PostgreSQL store with ``runner.kind: procrastinate``, and a number of
``ml-connector worker`` processes that run one backfill job per connection.

A round: empty the store and the job queue, reseed every simulator (a seed per connection), start the workers and
wait until each has registered with procrastinate (start-up is not measured), defer one flow job per connection, and
wait until every job has finished. Wall time = from the deferral to the last run's end (the store's ``runs`` rows);
connector CPU = the workers' CPU time (``psutil``) between their registration and the end, summed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine, text

from bench.config import write_connections_config
from bench.memory import peak_rss_mb
from bench.sims import SimProcess, Traffic, combined
from ml_connector.logging import configure
from ml_connector.runner.jobqueue import JobQueue, ensure_schema
from ml_connector.store import Store
from ml_connector.store.db import create_db_engine
from ml_connector.store.schema import metadata

FLOW = "purchase_orders"  # bench.config writes this one flow
QUEUE_TABLES = ("procrastinate_jobs", "procrastinate_workers")  # CASCADE reaches events and periodic defers


@dataclass
class Pair:
    name: str
    ifs: SimProcess
    jira: SimProcess


@dataclass
class Round:
    """What one round measured."""

    workers: int
    seconds: float  # deferral → last run finished
    created: int
    jobs: int
    cpu_s: float  # the workers' CPU during the round, summed
    startup_cpu_s: float  # their CPU from exec to registration, summed (not in cpu_s)
    peak_rss_mb: float  # the largest worker's peak RSS
    runs: Counter[str]  # run statuses
    issues: dict[str, Counter[str]]  # connection → IFS key → issues carrying it


class ScalingWorld:
    def __init__(self, work: Path, dsn: str, connections: int) -> None:
        self.work = work
        self.dsn = dsn
        self.pairs = [
            Pair(f"c{i + 1}", SimProcess("ifs", ["--purchase-orders", "0", "--work-orders", "0"]), SimProcess("jira"))
            for i in range(connections)
        ]
        self.engine: Engine | None = None
        self.config: Path | None = None

    def sims(self) -> list[SimProcess]:
        return [s for p in self.pairs for s in (p.ifs, p.jira)]

    def start(self, ifs_rpm: float | None) -> None:
        configure(level="WARNING", stream=sys.stderr)  # the queue's "job.deferred" lines are not the bench's output
        for sim in self.sims():
            sim.launch()
        for sim in self.sims():
            sim.ready()
        directory = self.work / "scaling"
        directory.mkdir(parents=True, exist_ok=True)
        self.config = write_connections_config(
            directory, [(p.name, p.ifs.url, p.jira.url) for p in self.pairs], store_url=self.dsn, ifs_rpm=ifs_rpm
        )
        Store.open(self.dsn).close()  # the store's schema at this version's head
        ensure_schema(self.dsn)
        self.engine = create_db_engine(self.dsn)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        for sim in self.sims():
            sim.stop()

    # -- the world of one round ------------------------------------------------------------------------------------

    def empty_store(self) -> None:
        """Every store row and job of an earlier round gone (the schema stays)."""
        names = ", ".join([t.name for t in metadata.sorted_tables] + list(QUEUE_TABLES))
        with self.db().begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    def reseed(self, records: int) -> None:
        for index, pair in enumerate(self.pairs):
            pair.ifs.reset(purchase_orders=records, work_orders=0, seed=42 + index)
            pair.jira.reset()

    def clear(self) -> dict[str, float]:
        for sim in self.sims():
            sim.clear_requests()
        return self.sim_cpu()

    def sim_cpu(self) -> dict[str, float]:
        return {"ifs": sum(p.ifs.cpu_seconds() for p in self.pairs),
                "jira": sum(p.jira.cpu_seconds() for p in self.pairs)}

    def traffic(self) -> tuple[Traffic, Traffic]:
        return combined([p.ifs.traffic() for p in self.pairs]), combined([p.jira.traffic() for p in self.pairs])

    def db(self) -> Engine:
        assert self.engine is not None, "ScalingWorld.start() first"
        return self.engine

    # -- one round -------------------------------------------------------------------------------------------------

    def run_round(self, workers: int, concurrency: int, timeout: float = 900) -> Round:
        procs = [self.spawn(workers, i, concurrency) for i in range(workers)]
        try:
            self.wait_registered(procs, timeout=120)
            cpu0 = [_cpu(p) for p in procs]
            started = datetime.now(UTC)
            queue = JobQueue(self.dsn)
            try:
                jobs = sum(queue.defer_flow(p.name, FLOW) for p in self.pairs)
            finally:
                queue.close()
            self.wait_finished(procs, started, timeout)
            cpu = sum(_cpu(p) for p in procs) - sum(cpu0)
            rss = max(peak_rss_mb(p.pid) for p in procs)
        finally:
            _stop(procs)
        seconds, created, statuses = self.runs_since(started)
        return Round(workers, seconds, created, jobs, cpu, sum(cpu0), rss, statuses, self.issues())

    def spawn(self, workers: int, index: int, concurrency: int) -> subprocess.Popen[bytes]:
        log = self.work / "scaling" / f"worker-{workers}-{index}.log"
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "ml_connector.cli", "worker", "--concurrency", str(concurrency),
                 "-c", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT,
            )

    def wait_registered(self, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
        """Until every worker has a row in ``procrastinate_workers`` (it takes jobs from then on)."""
        deadline = time.monotonic() + timeout
        while self.scalar("SELECT count(*) FROM procrastinate_workers") < len(procs):
            _alive(procs)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(procs)} workers did not register within {timeout:.0f} s")
            time.sleep(0.1)

    def wait_finished(self, procs: list[subprocess.Popen[bytes]], started: datetime, timeout: float) -> None:
        """Until no job waits or runs and every connection has a finished outbound run since ``started``."""
        deadline = time.monotonic() + timeout
        done = ("SELECT count(DISTINCT connection) FROM runs WHERE kind = 'outbound' AND finished_at IS NOT NULL "
                "AND started_at >= :started")
        while (self.scalar("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
               or self.scalar(done, started=started) < len(self.pairs)):
            _alive(procs)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the jobs did not finish within {timeout:.0f} s (logs in {self.work / 'scaling'})")
            time.sleep(0.1)

    def runs_since(self, started: datetime) -> tuple[float, int, Counter[str]]:
        """Seconds from ``started`` to the last run's end, orders created, run statuses."""
        with self.db().connect() as conn:
            rows = conn.execute(text("SELECT kind, status, finished_at, counts FROM runs WHERE started_at >= :s"),
                                {"s": started}).all()
        end = max(r.finished_at for r in rows)
        created = sum(int((r.counts or {}).get("created", 0)) for r in rows if r.kind == "outbound")
        return (end - started).total_seconds(), created, Counter(f"{r.kind} {r.status}" for r in rows)

    def issues(self) -> dict[str, Counter[str]]:
        """Per connection: how many issues in its Jira carry each IFS key (1 each: no duplicate, none missing)."""
        out: dict[str, Counter[str]] = {}
        for pair in self.pairs:
            issues = pair.jira.call("GET", "issues")["issues"]
            out[pair.name] = Counter(str(i["properties"]["ml-connector"]["key"]) for i in issues
                                     if "ml-connector" in (i.get("properties") or {}))
        return out

    def scalar(self, query: str, **params: Any) -> int:
        with self.db().connect() as conn:
            return int(conn.execute(text(query), params).scalar() or 0)


def _cpu(proc: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


def _alive(procs: list[subprocess.Popen[bytes]]) -> None:
    dead = [p for p in procs if p.poll() is not None]
    if dead:
        raise RuntimeError(f"a worker exited ({dead[0].returncode}) during the round; see its log")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
