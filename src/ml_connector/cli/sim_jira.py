"""``ml-connector sim jira``: run the Jira Cloud simulator in the foreground."""

from __future__ import annotations

from typing import Literal

import typer

from ml_connector.cli.sim import ServerTimeProfileChoice, burst_option, sim_app


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
    record_exchanges: bool = typer.Option(
        False, "--record-exchanges", help="Keep headers and bodies in the request log (for contract checks)."
    ),
    quota_global: int | None = typer.Option(
        None, "--quota-global", help="Points per window in the OAuth app's global pool (default: no quota)."
    ),
    quota_tenant: int | None = typer.Option(
        None, "--quota-tenant", help="Points per window in the per-tenant pool (default: no such pool)."
    ),
    quota_window: float = typer.Option(
        3600.0, "--quota-window", help="Seconds per quota window (an hour, at the top of the UTC hour, on Jira)."
    ),
    latency_ms: int = typer.Option(0, "--latency-ms", help="Network latency added to every request (ms)."),
    server_time_profile: ServerTimeProfileChoice | None = typer.Option(
        None, "--server-time-profile", help="Model server time per operation (e.g. 1.5 s per bulk create of 50)."
    ),
    burst: str | None = typer.Option(
        None,
        "--burst",
        callback=burst_option,
        help='Burst limit per endpoint: "documented" (GET/POST 100/s, PUT/DELETE 50/s), "off" or one number for all.',
    ),
    api_token: str = typer.Option(
        "sim-api-token", "--api-token", help="The one API token Basic auth accepts (one per site in multi-site tests)."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve a simulated Jira Cloud site (Basic: connector@example.com / sim-api-token; control API at /_sim/)."""
    from ml_connector.serve import serve_forever
    from ml_connector.sim.jira import Faults, JiraSimOptions, create_app

    faults = Faults(
        index_lag_seconds=index_lag,
        index_lag_jitter_seconds=index_lag_jitter,
        quota_global_points=quota_global,
        quota_tenant_points=quota_tenant,
        quota_window_seconds=quota_window,
        latency_ms=latency_ms,
        server_time_profile=server_time_profile.value if server_time_profile else None,
        burst_per_second=_burst(burst),
    )
    options = JiraSimOptions(admin_webhook_url=admin_webhook_url, api_token=api_token, faults=faults)
    app = create_app(options)
    app.state.sim.record_exchanges(record_exchanges)
    typer.echo(f"Jira Cloud simulator on http://{host}:{port} (control API: /_sim/)")
    serve_forever(app, host=host, port=port, log_level=log_level)


def _burst(value: str | None) -> float | Literal["documented"] | None:
    if value is None or value == "off":
        return None
    return "documented" if value == "documented" else float(value)
