"""``ml-connector run`` with two connections (each its own IFS and Jira simulator) in one process and one store:
each connection's records end on its own Jira site, logs and metrics name the connection, secrets stay out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import wait_until
from e2e.harness import connections_config

from ml_connector.serve import ServerHandle, free_port, serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions
from ml_connector.sim.ifs import create_app as ifs_app
from ml_connector.sim.jira import JiraSimOptions
from ml_connector.sim.jira import create_app as jira_app
from ml_connector.store import SYNCED, Store

from .simenv import example_config, write_config

CLI = str(Path(sys.executable).parent / "ml-connector")
SIZES = {"acme": 30, "globex": 12}


@pytest.fixture
def sims() -> Iterator[dict[str, tuple[ServerHandle, ServerHandle]]]:
    """Per connection an IFS and a Jira simulator that accept only that connection's credentials."""
    handles: dict[str, tuple[ServerHandle, ServerHandle]] = {}
    try:
        for index, (name, size) in enumerate(SIZES.items()):
            ifs = IfsSimOptions(
                purchase_orders=size, work_orders=2, seed=index + 5, client_secret=f"ifs-secret-of-{name}"
            )
            handles[name] = (
                serve_in_thread(ifs_app(ifs)),
                serve_in_thread(jira_app(JiraSimOptions(api_token=f"jira-token-of-{name}"))),
            )
        yield handles
    finally:
        for pair in handles.values():
            for handle in pair:
                handle.stop()


def _config(tmp_path: Path, sims: dict[str, tuple[ServerHandle, ServerHandle]]) -> Path:
    base: dict[str, Any] = example_config()
    base["flows"] = [base["flows"][0]]  # purchase orders only
    base["ifs"]["http"] = {"backoff_initial": 0.01, "backoff_max": 0.05}
    data = connections_config(*SIZES, base=base)
    for item in data["connections"]:
        ifs, jira = sims[item["name"]]
        item["ifs"]["url"], item["jira"]["url"] = ifs.url, jira.url
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    data["runner"] = {"lease_ttl": "30s"}
    return write_config(tmp_path, data)


def _sim_issue_keys(jira_url: str) -> list[str]:
    keys = []
    for project in ("PROC", "CAPEX"):
        body = httpx2.get(f"{jira_url}/_sim/issues", params={"project": project}, timeout=10).json()
        keys += [
            str(i["fields"].get("customfield_10053")) for i in (body["issues"] if isinstance(body, dict) else body)
        ]
    return keys


def test_run_serves_every_connection_apart(sims: dict[str, tuple[ServerHandle, ServerHandle]], tmp_path: Path) -> None:
    path = _config(tmp_path, sims)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "ML_CONNECTOR_CONNECTION"}
    env["ML_CONNECTOR_LOG_LEVEL"] = "INFO"
    daemon = subprocess.Popen(
        [CLI, "--log-format", "json", "run", "--config", str(path), "--port", str(port), "--now"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    stores = {name: Store.open(url, connection=name) for name in SIZES}
    try:
        for name, size in SIZES.items():
            try:
                wait_until(
                    lambda s=stores[name], n=size: s.records.count_by_state("purchase_orders").get(SYNCED, 0) >= n,
                    timeout=90,
                    interval=0.1,
                )
            except AssertionError as late:  # say what the daemon was doing: a hang here is otherwise a mystery
                daemon.kill()
                tail = daemon.communicate(timeout=30)[0][-6000:]
                counts = {n: st.records.count_by_state("purchase_orders") for n, st in stores.items()}
                raise AssertionError(f"{name} not synced; records by state {counts}; daemon log:\n{tail}") from late
        metrics = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        for store in stores.values():
            store.close()
    assert daemon.returncode == 0, output[-3000:]
    for name, size in SIZES.items():
        keys = _sim_issue_keys(sims[name][1].url)
        assert len(keys) == size == len(set(keys)), name  # each record once, on its own site only
        assert f'mlc_records{{connection="{name}",flow="purchase_orders",state="synced"}} {float(size)}' in metrics
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    starts = [line for line in lines if line.get("event") == "flow.start"]
    assert {line.get("connection") for line in starts} == set(SIZES)
    for name in SIZES:
        assert f"ifs-secret-of-{name}" not in output and f"jira-token-of-{name}" not in output
