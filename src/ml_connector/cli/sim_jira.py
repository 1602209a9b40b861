"""``ml-connector sim jira``: run the Jira Cloud simulator in the foreground."""

from __future__ import annotations

import typer

from ml_connector.cli.sim import sim_app


@sim_app.command("jira")
def sim_jira(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8081, help="Port to listen on."),
    index_lag: float = typer.Option(0.0, "--index-lag", help="Seconds before changes show up in search."),
    index_lag_jitter: float = typer.Option(
        0.0, "--index-lag-jitter", help="Up to this many more seconds per change, so changes show up out of order."
    ),
    admin_webhook_url: str | None = typer.Option(
        None, "--admin-webhook-url", help="Pre-register an admin webhook (signed with the sim webhook secret)."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve a simulated Jira Cloud site (Basic: connector@example.com / sim-api-token; control API at /_sim/)."""
    from ml_connector.serve import serve_forever
    from ml_connector.sim.jira import Faults, JiraSimOptions, create_app

    faults = Faults(index_lag_seconds=index_lag, index_lag_jitter_seconds=index_lag_jitter)
    options = JiraSimOptions(admin_webhook_url=admin_webhook_url, faults=faults)
    typer.echo(f"Jira Cloud simulator on http://{host}:{port} (control API: /_sim/)")
    serve_forever(create_app(options), host=host, port=port, log_level=log_level)
