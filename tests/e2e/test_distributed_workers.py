"""Issue 10, items 2 and 4: runner.kind procrastinate with one `run` process and two `ml-connector worker` processes on
a real PostgreSQL; simulators in their own processes. Every record ends in exactly one issue, no two runs of one flow
overlap, workers SIGKILLed mid-run lose nothing (their job is put back and finished by a restarted worker), and
workers SIGTERMed mid-run stop cleanly (exit 0) and leave the rest of the run queued."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx2
import pytest
import yaml
from conftest import require_pg, reset_postgres, wait_until
from sqlalchemy import text

from e2e.procs import CLI, SimProcess, open_store, start_all, write_config
from ml_connector.config.models import load_config
from ml_connector.engine import Connector

RECORDS = 600
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[tuple[SimProcess, SimProcess]]:
    ifs, jira = start_all(
        [
            ("ifs", tmp_path / "ifs.log", ("--purchase-orders", str(RECORDS), "--work-orders", "0")),
            ("jira", tmp_path / "jira.log", ()),
        ]
    )
    try:
        yield ifs, jira
    finally:
        ifs.stop()
        jira.stop()


def _store_url() -> str:
    dsn = require_pg()
    reset_postgres(dsn)
    engine = open_store(dsn).engine
    with engine.begin() as conn:  # jobs of earlier tests on this database
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            conn.execute(text("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE"))
    engine.dispose()
    return dsn


def _config(tmp_path: Path, ifs: SimProcess, jira: SimProcess, store_url: str) -> Path:
    path = write_config(
        tmp_path / "ml-connector.yaml",
        ifs_url=ifs.url,
        jira_url=jira.url,
        store_url=store_url,
        tweak={
            "runner": {"kind": "procrastinate", "stalled_after": 3},
            "sync": {"reconcile_settle": 0.5, "retry_initial": 0, "retry_max": 0, "bulk_size": 5,
                     "bulk_concurrency": 1},
        },
    )
    data = yaml.safe_load(path.read_text())
    flows = [f for f in data["flows"] if f["name"] == "purchase_orders"]
    data["flows"] = [dict(f, page_size=40, schedule="every 5s") for f in flows]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _in_scope(config: Path, store_url: str) -> set[str]:
    loaded = load_config(config)
    flow = loaded.flow("purchase_orders")
    c = Connector(config=loaded, store=open_store(store_url))
    try:
        return {str(r[flow.key]) for r in c.ifs.iter_records(flow.entity_set, select=[flow.key], filter=flow.filter)}
    finally:
        c.close()
        c.store.close()


def _issues_per_key(jira: SimProcess) -> Counter[str]:
    issues = jira.control.call("GET", "issues")["issues"]
    return Counter(
        str(i["properties"]["ml-connector"]["key"]) for i in issues if "ml-connector" in (i.get("properties") or {})
    )


def _spawn(tmp_path: Path, config: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    with (tmp_path / f"{name}.log").open("ab") as out:
        return subprocess.Popen([*CLI, *args, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)


def _runs(store_url: str) -> list[tuple[datetime, datetime | None, str]]:
    engine = open_store(store_url).engine
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT started_at, finished_at, status FROM runs WHERE flow = 'purchase_orders' ORDER BY started_at")
        ).all()
    engine.dispose()
    return [(r[0], r[1], r[2]) for r in rows]


def _progress(jira: SimProcess, total: int) -> None:
    """Wait until a run has created 20 more issues (or all): a run is under way."""
    floor = len(_issues_per_key(jira))
    wait_until(
        lambda: len(_issues_per_key(jira)) >= min(floor + 20, total), timeout=120, interval=0.2, what="a run"
    )


def _scrape_metrics(log: Path) -> str:
    match = re.search(r"running on (http://127\.0\.0\.1:\d+)", log.read_text())
    assert match, log.read_text()[-2000:]
    return httpx2.get(f"{match.group(1)}/metrics", timeout=10).text


@pytest.mark.timeout(600)
def test_two_workers_and_a_run_process_sync_every_record_once_through_sigkills(
    tmp_path: Path, sims: tuple[SimProcess, SimProcess]
) -> None:
    ifs, jira = sims
    jira.control.faults(latency_ms=100)  # a run lasts seconds: the kills land mid-run
    store_url = _store_url()
    config = _config(tmp_path, ifs, jira, store_url)
    expected = _in_scope(config, store_url)
    run = _spawn(tmp_path, config, "run", "run", "--port", "0", "--now")
    workers = [_spawn(tmp_path, config, "worker", "worker", "--concurrency", "2") for _ in range(2)]
    try:
        for _ in range(2):  # kill every worker mid-run (the one running the flow among them), start two afresh
            _progress(jira, len(expected))
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
            workers = [_spawn(tmp_path, config, "worker", "worker", "--concurrency", "2") for _ in range(2)]
        _progress(jira, len(expected))
        for worker in workers:  # SIGTERM mid-run: a clean stop within seconds, the rest of the run queued again
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(20) == 0
        workers = [_spawn(tmp_path, config, "worker", "worker", "--concurrency", "2") for _ in range(2)]
        wait_until(lambda: set(_issues_per_key(jira)) >= expected, timeout=240, interval=0.5, what="every record")
        metrics = _scrape_metrics(tmp_path / "run.log")
        for p in [run, *workers]:
            p.send_signal(signal.SIGTERM)
        for p in [run, *workers]:
            assert p.wait(60) == 0
    finally:
        for p in [run, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    rescued = (tmp_path / "worker.log").read_text().count('"event": "job.stalled_')
    assert rescued >= 2  # each round killed a worker mid-job: its job was put back (or closed for the waiting one)
    per_key = _issues_per_key(jira)
    assert [k for k, n in per_key.items() if n > 1] == []  # 0 duplicates
    assert expected - set(per_key) == set()  # 0 missing
    # The run process ran no flow itself: it deferred them, the workers' jobs succeeded, and /metrics says so.
    assert 'mlc_jobs_deferred_total{result="deferred",task="mlc.flow_run"}' in metrics
    succeeded = r'mlc_jobs\{connection="default",status="succeeded",task="mlc\.flow_run"\} [1-9]'
    assert re.search(succeeded, metrics), metrics
    assert 'mlc_job_start_latency_seconds{connection="default",quantile="0.95",task="mlc.flow_run"}' in metrics
    assert 'mlc_job_duration_seconds{connection="default",quantile="0.95",task="mlc.flow_run"}' in metrics
    assert 'mlc_job_oldest_waiting_seconds{connection="default"}' in metrics
    assert "mlc_runs_total{" not in metrics  # runs are counted where they ran: in the workers
    runs = _runs(store_url)
    finished = [(s, f) for s, f, _ in runs if f is not None]
    assert len(finished) >= 2, runs
    # No two runs of the flow overlap: each starts after the previous one ended (a killed one never ends; the next
    # starts only after the rescue, so it is checked against the finished ones around it).
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(finished)), finished
