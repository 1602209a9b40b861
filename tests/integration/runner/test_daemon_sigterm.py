"""``ml-connector run`` as a subprocess against the simulators: SIGTERM mid-run, a consistent store, a clean finish;
and a second daemon on the same database refusing to schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import wait_until

from ml_connector.cli.app import ExitCode
from ml_connector.config.models import load_config
from ml_connector.ifs import IfsClient
from ml_connector.serve import ServerHandle, free_port
from ml_connector.store import SYNCED, Store

from .simenv import example_config, simulators, write_config

CLI = str(Path(sys.executable).parent / "ml-connector")
PURCHASE_ORDERS = 60


@pytest.fixture
def sims() -> Iterator[tuple[ServerHandle, ServerHandle]]:
    with simulators(purchase_orders=PURCHASE_ORDERS, work_orders=3, seed=11) as pair:
        yield pair


def config_file(tmp_path: Path, sims: tuple[ServerHandle, ServerHandle]) -> Path:
    data: dict[str, Any] = example_config()
    data["ifs"]["url"], data["jira"]["url"] = sims[0].url, sims[1].url
    data["ifs"]["http"] = {"backoff_initial": 0.01, "backoff_max": 0.05}
    data["flows"] = [data["flows"][0]]  # purchase orders only: small and enough
    data["flows"][0]["page_size"] = 10
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    data["runner"] = {"lease_ttl": "30s"}
    return write_config(tmp_path, data)


def start(path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "INFO"}
    args = [CLI, "run", "--config", str(path), "--port", str(free_port()), *extra]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def jira_issues(jira_url: str) -> list[dict[str, Any]]:
    """Purchase-order issues live in PROC and, for mapped IFS projects, CAPEX."""
    issues: list[dict[str, Any]] = []
    for project in ("PROC", "CAPEX"):
        body = httpx2.get(f"{jira_url}/_sim/issues", params={"project": project}, timeout=10).json()
        issues += list(body["issues"] if isinstance(body, dict) else body)
    return issues


def test_sigterm_mid_run_leaves_consistent_state_and_next_run_completes(
    sims: tuple[ServerHandle, ServerHandle], tmp_path: Path
) -> None:
    ifs_url, jira_url = sims[0].url, sims[1].url
    # Slow IFS so the run is mid-flight when SIGTERM arrives.
    httpx2.put(f"{ifs_url}/_sim/faults", json={"latency_ms": 120}, timeout=10).raise_for_status()
    path = config_file(tmp_path, sims)
    daemon = start(path, "--now")
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        wait_until(
            lambda: store.records.count_by_state("purchase_orders").get(SYNCED, 0) >= 10, timeout=30, interval=0.05
        )
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    assert "stopped cleanly" in output

    runs = store.runs.recent(flow="purchase_orders")
    assert runs and all(r.status != "running" for r in runs), [(r.kind, r.status) for r in runs]
    assert runs[0].kind == "outbound" and runs[0].status == "interrupted"
    assert store.leases.holder("scheduler") is None  # released on the way out
    records = store.records.list(flow="purchase_orders", limit=1000)
    assert 10 <= len(records) < PURCHASE_ORDERS  # stopped part way
    issues = jira_issues(jira_url)
    # No half-done record: every Jira issue belongs to exactly one record that knows its id, and vice versa.
    linked = {r.jira_id for r in records if r.jira_id}
    assert linked == {str(i["id"]) for i in issues}
    assert all(r.state == SYNCED for r in records if r.jira_id)

    httpx2.put(f"{ifs_url}/_sim/faults", json={"latency_ms": 0}, timeout=10).raise_for_status()
    second = subprocess.run(
        [CLI, "sync", "--config", str(path), "--no-writeback"], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stdout + second.stderr

    config = load_config(path)
    flow = config.flows[0]
    with IfsClient.from_connection(config.ifs) as ifs:
        keys = {str(r["OrderNo"]) for r in ifs.iter_records(flow.entity_set, select=["OrderNo"], filter=flow.filter)}
    per_key = Counter(str(i["fields"].get("customfield_10053")) for i in jira_issues(jira_url))
    assert set(per_key) == keys
    assert set(per_key.values()) == {1}  # every IFS key has exactly one Jira issue
    assert store.records.count_by_state("purchase_orders") == {SYNCED: len(keys)}
    store.close()


def test_second_daemon_refuses_to_schedule(sims: tuple[ServerHandle, ServerHandle], tmp_path: Path) -> None:
    path = config_file(tmp_path, sims)
    first = start(path, "--no-web")
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        wait_until(lambda: store.leases.holder("scheduler") is not None, timeout=30, interval=0.05)
        holder, _until = store.leases.holder("scheduler") or ("", None)
        second = subprocess.run(
            [CLI, "run", "--config", str(path), "--no-web"], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == ExitCode.BUSY
        message = " ".join((second.stdout + second.stderr).split())
        assert "another daemon on this database holds the scheduler lease" in message
        assert holder in message and " until " in message
        assert store.runs.recent() == []  # nobody ran anything (hourly, not yet due)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
        store.close()
    assert first.returncode == 0
