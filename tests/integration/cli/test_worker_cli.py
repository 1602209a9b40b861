"""`ml-connector worker`, `migrate` and `sync --queue` as an operator meets them (runner.kind procrastinate)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import require_pg, reset_postgres
from e2e.harness import example_config

from ml_connector.runner.jobqueue import conninfo


def _config(tmp_path: Path, store_url: str, kind: str) -> Path:
    data = example_config()
    data["ifs"].update(url="http://127.0.0.1:9", realm="mlc", client_id="ml-connector", client_secret="s")
    data["jira"].update(url="http://127.0.0.1:9")
    data["jira"]["auth"] = {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    data["store"] = {"url": store_url}
    data["runner"] = {"kind": kind}
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_worker_and_sync_queue_are_refused_with_the_local_runner(tmp_path: Path) -> None:
    path = _config(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite'}", "local")
    for args in (["worker"], ["sync", "--queue"]):
        done = _cli(*args, "-c", str(path))
        assert done.returncode == 2, done.stderr
        assert "runner.kind" in done.stderr and "procrastinate" in done.stderr


def test_procrastinate_on_sqlite_is_refused_naming_the_setting(tmp_path: Path) -> None:
    path = _config(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite'}", "procrastinate")
    done = _cli("migrate", "-c", str(path))
    assert done.returncode == 2 and "runner.kind" in done.stderr and "PostgreSQL" in done.stderr, done.stderr


@pytest.mark.postgres
def test_migrate_applies_the_queue_schema_and_sync_queue_defers_each_flow_once(tmp_path: Path) -> None:
    dsn = require_pg()
    reset_postgres(dsn)
    path = _config(tmp_path, dsn, "procrastinate")
    first = _cli("migrate", "-c", str(path))
    assert first.returncode == 0, first.stderr
    assert "job queue schema" in first.stderr and "store schema up to date" in first.stderr
    assert "already present" in _cli("migrate", "-c", str(path)).stderr  # idempotent
    with psycopg.connect(conninfo(dsn)) as conn:
        conn.execute("TRUNCATE procrastinate_jobs CASCADE")
    queued = _cli("sync", "--queue", "-c", str(path))
    assert queued.returncode == 0, queued.stderr
    assert "purchase_orders: queued for the workers" in queued.stderr
    again = _cli("sync", "--queue", "--flow", "purchase_orders", "-c", str(path))
    assert "purchase_orders: a job for this flow is already waiting" in again.stderr, again.stderr
    with psycopg.connect(conninfo(dsn)) as conn:
        rows = conn.execute("SELECT task_name, args->>'flow' FROM procrastinate_jobs ORDER BY id").fetchall()
    assert rows == [("mlc.flow_run", "purchase_orders"), ("mlc.flow_run", "work_orders")]


def test_a_worker_that_cannot_reach_its_database_says_so_and_exits_2(tmp_path: Path) -> None:
    path = _config(tmp_path, "postgresql+psycopg://mlc:hunter2-secret@127.0.0.1:1/mlc", "procrastinate")
    done = _cli("worker", "-c", str(path))
    assert done.returncode == 2, done.stderr
    assert "store.url: cannot open the store" in done.stderr and "Traceback" not in done.stderr
    assert "hunter2-secret" not in done.stderr
