"""``ml-connector run``: the daemon (scheduler, web app, webhook upkeep) until SIGTERM."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ml_connector.cli.app import ExitCode, app
from ml_connector.cli.context import ConfigOption, config_path, load_all
from ml_connector.runner import ConnectionsDaemon, Daemon, DaemonOptions, LeaseBusy, build_connector
from ml_connector.runner.jobqueue import open_job_queue

err = Console(stderr=True)


@app.command()
def run(
    host: str | None = typer.Option(None, "--host", help="Bind address of the web app (default: web.host)."),
    port: int | None = typer.Option(None, "--port", help="Port of the web app (default: web.port)."),
    wait: bool = typer.Option(
        False, "--wait", help="If another daemon holds the lease, wait for it instead of exiting."
    ),
    now: bool = typer.Option(False, "--now", help="Run every enabled flow once at start, then follow the schedule."),
    no_web: bool = typer.Option(False, "--no-web", help="Do not serve the web app."),
    config: Path | None = ConfigOption,
) -> None:
    """Run the scheduler and the web app until SIGTERM; a second daemon on the same database refuses to schedule.

    With several connections in the file, every connection's flows run (unless --connection names one), and the
    web app serves each connection's dashboard at /c/<name>/."""
    configs = load_all(config, service=True)
    connectors = [build_connector(config_path(config), cfg) for cfg in configs]
    options = DaemonOptions(host=host, port=port, wait=wait, run_now=now, serve_web=not no_web)
    daemon: Daemon | ConnectionsDaemon = (
        Daemon(connectors[0], options) if len(connectors) == 1 else ConnectionsDaemon.build(connectors, options)
    )
    if configs[0].runner.kind == "procrastinate":  # flow runs, webhook events and replays become jobs for workers
        for each in daemon.daemons if isinstance(daemon, ConnectionsDaemon) else [daemon]:
            each.queue = open_job_queue(each.connector)
    daemon.install_signal_handlers()

    def waiting(holder: str) -> None:
        err.print(f"another daemon holds the scheduler lease: {escape(holder)}; waiting for it (--wait)")

    try:
        daemon.acquire_lease(on_wait=waiting)
    except LeaseBusy as busy:
        for connector in connectors:
            connector.close()
        err.print(
            f"[bold]not scheduling[/]: another daemon on this database holds the scheduler lease: "
            f"{escape(busy.description)}. Stop it first, or start this one with --wait.",
            highlight=False,
        )
        raise typer.Exit(ExitCode.BUSY) from None
    try:
        daemon.start()
        where = f" on {daemon.web_url}" if daemon.web_url else ""
        err.print(f"ml-connector running{where} (lease holder {escape(daemon.lease.holder if daemon.lease else '?')})")
        daemon.wait()
    finally:
        daemon.stop()
    err.print("ml-connector stopped cleanly")
