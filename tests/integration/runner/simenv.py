"""Shared helpers for runner and CLI integration tests: simulators on loopback and configs from the example."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions
from ml_connector.sim.ifs import create_app as ifs_app
from ml_connector.sim.jira import create_app as jira_app


def example_config() -> dict[str, Any]:
    text = resources.files("ml_connector.config.templates").joinpath("example.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "ml-connector.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def simulators(**ifs_options: Any) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    ifs = serve_in_thread(ifs_app(IfsSimOptions(**ifs_options)))
    jira = serve_in_thread(jira_app())
    try:
        yield ifs, jira
    finally:
        ifs.stop()
        jira.stop()


def drop_job_queue(url: str) -> None:
    """Remove procrastinate's objects (tables, types, functions) left by earlier tests from the database."""
    import psycopg

    from ml_connector.runner.jobqueue import conninfo

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers CASCADE")
        conn.execute("DROP TABLE IF EXISTS procrastinate_jobs, procrastinate_workers, procrastinate_version CASCADE")
        for kind in ("procrastinate_job_status", "procrastinate_job_event_type", "procrastinate_job_to_defer_v1"):
            conn.execute(f"DROP TYPE IF EXISTS {kind} CASCADE")
        rows = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname LIKE 'procrastinate%'"
        ).fetchall()
        for (signature,) in rows:
            conn.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")


def empty_queue_database() -> str:
    """The test PostgreSQL database with no connector tables and no job-queue schema: its URL."""
    from conftest import require_pg, reset_postgres

    url = require_pg()
    reset_postgres(url)
    drop_job_queue(url)
    return url
