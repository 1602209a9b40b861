"""``ml-connector check``: a pass/fail table of every fit check, with the fix for each failure."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import make_url, text

from ml_connector.cli.app import ExitCode, app
from ml_connector.cli.context import ConfigOption, config_path, load
from ml_connector.config.connections import JiraOAuth
from ml_connector.diagnostics import FAIL, PASS, WARN, CheckResult, run_checks
from ml_connector.diagnostics.results import why
from ml_connector.jira.tokens import TokenStore
from ml_connector.store import Store
from ml_connector.store.db import create_db_engine, normalise_url

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


_STORE_FIX = "set store.url to a writable SQLite file (sqlite:///path) or a reachable PostgreSQL database"


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


def _probe_store(url: str) -> None:
    """Raise if the store cannot be used. Reads only: a SQLite file not there yet is not created (its nearest
    existing folder must be writable); anything else is connected to."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        folder = next(p for p in path.absolute().parents if p.exists())
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot create {path}: {folder} is not a writable folder")
        return
    if path is not None and not os.access(path, os.R_OK | os.W_OK):
        raise PermissionError(f"{path} is not readable and writable")
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _store_result(url: str) -> CheckResult:
    """An unusable store.url fails here, not at the first `sync`."""
    try:
        _probe_store(url)
    except Exception as exc:  # any URL, driver, path or permission error: all mean store.url is unusable
        return CheckResult("store", "store.url", FAIL, why(exc), _STORE_FIX)
    return CheckResult("store", "store.url", PASS, make_url(url).render_as_string(hide_password=True))


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
    store_results = [_store_result(cfg.store.url)] if cfg.store.url else []
    store_ok = not any(r.failed for r in store_results)
    if isinstance(cfg.jira.auth, JiraOAuth) and cfg.store.url and store_ok:
        # Refresh tokens rotate on use: the rotated one must land where the daemon will look for it.
        from ml_connector.runner.credentials import DbTokenStore, resolve_key

        url = cfg.store.url
        token_store = DbTokenStore(Store.open(url), resolve_key(cfg, config_path=config_path(config)))
        store_factory = lambda: Store.open(url)  # noqa: E731 - which webhook ids were registered for which URL
    results = store_results + run_checks(cfg, token_store=token_store, store_factory=store_factory, sample=sample)
    if as_json:
        for r in results:
            typer.echo(json.dumps(dataclasses.asdict(r), sort_keys=True))
    else:
        render(results)
    if not store_ok:
        raise typer.Exit(ExitCode.CONFIG)  # every command needs the store: a config problem, exit 2
    if any(r.failed for r in results):
        raise typer.Exit(ExitCode.ERROR)
