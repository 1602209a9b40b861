"""``ml-connector check``: a pass/fail table of every fit check, with the fix for each failure."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ml_connector.cli.app import ExitCode, app
from ml_connector.cli.context import ConfigOption, config_path, load
from ml_connector.config.connections import JiraOAuth
from ml_connector.diagnostics import FAIL, PASS, WARN, CheckResult, run_checks
from ml_connector.diagnostics.runner import runner_results
from ml_connector.diagnostics.store import store_results
from ml_connector.jira.tokens import TokenStore
from ml_connector.store import Store

console = Console(width=200)

_STYLE = {PASS: "[green]PASS[/]", FAIL: "[bold red]FAIL[/]", WARN: "[yellow]WARN[/]"}


def render(results: list[CheckResult], out: Console = console) -> None:
    table = Table(title="ml-connector check", show_lines=False)
    for col in ("", "system", "check", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            _STYLE.get(r.status, "[dim]SKIP[/]"), r.system, escape(r.name), escape(r.detail), escape(r.fix or "")
        )
    out.print(table)
    failed = sum(r.failed for r in results)
    out.print(f"{len(results)} checks: {failed} failed" if failed else f"{len(results)} checks: all passed")


@app.command()
def check(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per check instead of the table."),
    sample: int = typer.Option(
        0, "--sample", min=0, help="Also map the first N IFS records of each flow and report values that do not map."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Prove the configuration fits IFS and Jira, reading only: credentials, projections, fields, projects."""
    cfg = load(config)
    token_store: TokenStore | None = None
    store_factory: Callable[[], Store] | None = None
    store_rows = store_results(cfg.store.url) if cfg.store.url else []
    store_ok = not any(r.failed for r in store_rows if r.name == "store.url")
    # The job queue's and the shared buckets' tables, when the runner settings use them.
    runner_rows = runner_results(cfg) if store_ok else []
    if isinstance(cfg.jira.auth, JiraOAuth) and cfg.store.url and store_ok:
        # Refresh tokens rotate on use: the rotated one must land where the daemon will look for it.
        from ml_connector.runner.credentials import DbTokenStore, resolve_key

        url = cfg.store.url
        migrated = not any(r.failed for r in store_rows)  # a schema to upgrade is reported, not upgraded by check
        token_store = DbTokenStore(
            Store.open(url, connection=cfg.name, migrate_schema=migrated),
            resolve_key(cfg, config_path=config_path(config)),
        )
        store_factory = lambda: Store.open(url, connection=cfg.name)  # noqa: E731 - which webhook ids were registered for which URL
    results = (
        store_rows + runner_rows + run_checks(cfg, token_store=token_store, store_factory=store_factory, sample=sample)
    )
    if as_json:
        for r in results:
            typer.echo(json.dumps(dataclasses.asdict(r), sort_keys=True))
    else:
        render(results)
    if not store_ok:
        raise typer.Exit(ExitCode.CONFIG)  # every command needs the store: a config problem, exit 2
    if any(r.failed for r in results):
        raise typer.Exit(ExitCode.ERROR)
