"""``ml-connector sim ifs``: serve the IFS Cloud simulator on a loopback port."""

from __future__ import annotations

import typer

from ml_connector.cli.sim import ServerTimeProfileChoice, sim_app


@sim_app.command("ifs")
def sim_ifs(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8401, help="TCP port."),
    seed: int = typer.Option(42, help="Seed of the deterministic test data."),
    sites: int = typer.Option(3, help="Number of sites."),
    suppliers: int = typer.Option(20, help="Number of suppliers."),
    persons: int = typer.Option(20, help="Number of persons (the shared people always exist)."),
    projects: int = typer.Option(8, help="Number of projects."),
    purchase_orders: int = typer.Option(200, "--purchase-orders", help="Number of purchase orders."),
    work_orders: int = typer.Option(50, "--work-orders", help="Number of work orders."),
    realm: str = typer.Option("mlc", help="IAM realm."),
    client_id: str = typer.Option("ml-connector", help="IAM client id."),
    client_secret: str = typer.Option("sim-secret", help="IAM client secret."),
    token_expires_in: int = typer.Option(180, help="Access-token lifetime in seconds."),
    max_page_size: int = typer.Option(1000, help="Server page size when the client sends no maxpagesize."),
    next_links: bool = typer.Option(True, "--next-links/--no-next-links", help="Emit @odata.nextLink."),
    strict_if_match: bool = typer.Option(
        False,
        "--strict-if-match/--no-strict-if-match",
        help="Refuse PATCH without If-Match and If-Match: * (428); IFS itself upserts and accepts *.",
    ),
    time_zone: str = typer.Option("UTC", help="The server's time zone (IANA name), e.g. America/Chicago."),
    naive_custom_attributes: bool = typer.Option(
        False,
        "--naive-custom-attributes/--zone-aware-custom-attributes",
        help="Cf_* date-times are the server's wall time, whatever X-Ifs-Time-Zone-Aware-Request says.",
    ),
    rate_limit: int = typer.Option(1000, help="Requests per minute per client id before 429 (0 disables)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Network latency added to every request (ms)."),
    server_time_profile: ServerTimeProfileChoice | None = typer.Option(
        None, "--server-time-profile", help="Model server time per operation (e.g. 0.8 s per 1,000 rows read)."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the IFS Cloud simulator (IAM token endpoint, OData projections, /_sim/ control API)."""
    from ml_connector.serve import serve_forever
    from ml_connector.sim.ifs import FaultSettings, IfsSimOptions, create_app

    options = IfsSimOptions(
        seed=seed,
        sites=sites,
        suppliers=suppliers,
        persons=persons,
        projects=projects,
        purchase_orders=purchase_orders,
        work_orders=work_orders,
        realm=realm,
        client_id=client_id,
        client_secret=client_secret,
        token_expires_in=token_expires_in,
        max_page_size=max_page_size,
        next_links=next_links,
        strict_if_match=strict_if_match,
        time_zone=time_zone,
        custom_attributes_time_zone_aware=not naive_custom_attributes,
        faults=FaultSettings(
            rate_limit_per_minute=rate_limit or None,
            latency_ms=latency_ms,
            server_time_profile=server_time_profile.value if server_time_profile else None,
        ),
    )
    app = create_app(options)
    typer.echo(
        f"IFS Cloud simulator on http://{host}:{port} (realm {realm}, client {client_id}); "
        f"{purchase_orders} purchase orders, {work_orders} work orders",
        err=True,
    )
    serve_forever(app, host=host, port=port, log_level=log_level)
