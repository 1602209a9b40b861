"""Issue 10, items 2 and 4: runner.kind procrastinate with one `run` process and two `ml-connector worker` processes on
a real PostgreSQL; simulators in their own processes. Every record ends in exactly one issue, no two runs of one flow
overlap, workers SIGKILLed mid-run lose nothing (their job is put back and finished by a restarted worker), and
workers SIGTERMed mid-run stop cleanly (exit 0) and leave the rest of the run queued."""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml
from conftest import wait_until

from e2e.distributed import flow_runs, fresh_store_url, in_scope, issues_per_key, spawn
from e2e.procs import SimProcess, start_all, write_config

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


def _progress(jira: SimProcess, total: int) -> None:
    """Wait until a run has created 20 more issues (or all): a run is under way."""
    floor = len(issues_per_key(jira))
    wait_until(
        lambda: len(issues_per_key(jira)) >= min(floor + 20, total), timeout=120, interval=0.2, what="a run"
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
    store_url = fresh_store_url()
    config = _config(tmp_path, ifs, jira, store_url)
    expected = in_scope(config, store_url)
    run = spawn(tmp_path, config, "run", "run", "--port", "0", "--now")
    workers = [spawn(tmp_path, config, "worker", "worker", "--concurrency", "2") for _ in range(2)]
    try:
        for _ in range(2):  # kill every worker mid-run (the one running the flow among them), start two afresh
            _progress(jira, len(expected))
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
            workers = [spawn(tmp_path, config, "worker", "worker", "--concurrency", "2") for _ in range(2)]
        _progress(jira, len(expected))
        for worker in workers:  # SIGTERM mid-run: a clean stop within seconds, the rest of the run queued again
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(20) == 0
        workers = [spawn(tmp_path, config, "worker", "worker", "--concurrency", "2") for _ in range(2)]
        wait_until(lambda: set(issues_per_key(jira)) >= expected, timeout=240, interval=0.5, what="every record")
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
    per_key = issues_per_key(jira)
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
    runs = flow_runs(store_url)
    finished = [(s, f) for _, s, f, _ in runs if f is not None]
    assert len(finished) >= 2, runs
    # No two runs of the flow overlap: each starts after the previous one ended (a killed one never ends; the next
    # starts only after the rescue, so it is checked against the finished ones around it).
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(finished)), finished
