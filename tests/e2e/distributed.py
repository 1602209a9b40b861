"""Helpers of the distributed-runner e2e tests (``runner.kind: procrastinate``): a clean PostgreSQL store and job
queue, connector processes, the issues a Jira simulator holds per IFS key, the records in scope and the runs table."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path

from conftest import require_pg, reset_postgres
from sqlalchemy import text

from e2e.harness import issues_per_key as harness_issues_per_key
from e2e.procs import CLI, SimProcess, open_store
from ml_connector.config.models import load_config
from ml_connector.engine import Connector


def fresh_store_url() -> str:
    """The test PostgreSQL database with no store tables and no jobs of earlier tests."""
    dsn = require_pg()
    reset_postgres(dsn)
    engine = open_store(dsn).engine
    with engine.begin() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            conn.execute(text("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE"))
    engine.dispose()
    return dsn


def spawn(tmp_path: Path, config: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """``ml-connector ARGS -c CONFIG`` in the background, its output appended to ``<name>.log``."""
    with (tmp_path / f"{name}.log").open("ab") as out:
        return subprocess.Popen([*CLI, *args, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)


def issues_per_key(jira: SimProcess) -> Counter[str]:
    """How many issues of the site carry each IFS key in their identity property."""
    return harness_issues_per_key(jira.control.call("GET", "issues")["issues"])


def in_scope(
    config: Path, store_url: str, connection: str | None = None, flow_name: str = "purchase_orders"
) -> set[str]:
    """The IFS keys the flow's filter selects, read from the connection's tenant the way the connector reads it."""
    loaded = load_config(config, connection=connection)
    flow = loaded.flow(flow_name)
    c = Connector(config=loaded, store=open_store(store_url))
    try:
        return {str(r[flow.key]) for r in c.ifs.iter_records(flow.entity_set, select=[flow.key], filter=flow.filter)}
    finally:
        c.close()
        c.store.close()


def flow_runs(store_url: str, flow: str = "purchase_orders") -> list[tuple[str, datetime, datetime | None, str]]:
    """Every run row of the flow: connection, started_at, finished_at (None: never finished), status."""
    engine = open_store(store_url).engine
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT connection, started_at, finished_at, status FROM runs WHERE flow = :flow "
                "ORDER BY connection, started_at"
            ),
            {"flow": flow},
        ).all()
    engine.dispose()
    return [(r[0], r[1], r[2], r[3]) for r in rows]
