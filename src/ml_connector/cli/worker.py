"""``ml-connector worker`` (runs queued jobs, ``runner.kind: procrastinate``) and ``ml-connector migrate``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ml_connector.cli.app import app
from ml_connector.cli.context import ConfigOption, config_path, load, load_all
from ml_connector.config.models import ConnectorConfig
from ml_connector.errors import ConfigError
from ml_connector.runner.jobqueue import JobQueue, connection_name, ensure_schema
from ml_connector.runner.jobworker import JobWorker, WorkerOptions, connection_resolver
from ml_connector.store import Store

err = Console(stderr=True)


def _queued(config: ConnectorConfig) -> str:
    if config.runner.kind != "procrastinate" or config.store.url is None:
        raise ConfigError(
            "`ml-connector worker` runs the jobs of runner.kind 'procrastinate'; with 'local', `ml-connector run` "
            "runs every flow itself",
            path="runner.kind",
        )
    return config.store.url


@app.command()
def worker(
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Jobs run at once by this process."),
    queues: str | None = typer.Option(
        None, "--queues", help="Comma-separated connection names whose jobs to take (default: every connection)."
    ),
    per_connection: int | None = typer.Option(
        None, "--per-connection", min=1, help="Most jobs of one connection at once here (default: half --concurrency)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run queued flow runs, webhook events and replays until SIGTERM (runner.kind: procrastinate)."""
    configs = load_all(config, service=True)  # every connection, or the one --connection names
    cfg = configs[0]
    url = _queued(cfg)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    options = WorkerOptions(
        concurrency=concurrency, queues=names, stalled_after=cfg.runner.stalled_after, per_connection=per_connection
    )
    err.print(f"ml-connector worker: {concurrency} at once, queues {', '.join(names) if names else 'all'}")
    JobWorker(url, connection_resolver(config_path(config), configs), options).run()
    err.print("ml-connector worker stopped cleanly")


@app.command()
def migrate(config: Path | None = ConfigOption) -> None:
    """Bring the store's schema (and, with runner.kind procrastinate, the job queue's) to this version."""
    cfg = load(config, store_only=True)
    assert cfg.store.url is not None
    Store.open(cfg.store.url).close()
    if cfg.runner.kind == "procrastinate":
        applied = ensure_schema(cfg.store.url)
        err.print(f"job queue schema {'applied' if applied else 'already present'}")
    err.print("store schema up to date")


def defer_from_cli(config: ConnectorConfig, task: str, flows: list[str]) -> None:
    """`sync --queue` / `replay --queue`: hand the flows to the workers as jobs and say what became of each."""
    url = _queued(config)
    ensure_schema(url)
    queue = JobQueue(url)
    try:
        for name in flows:
            if queue.defer(task, connection_name(config), name, flow=name):
                err.print(f"{name}: queued for the workers")
            else:
                err.print(f"{name}: a job for this flow is already waiting; it does this work")
    finally:
        queue.close()
