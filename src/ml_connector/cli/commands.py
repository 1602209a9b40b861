"""Connector commands: sync, status, records, audit, replay, init."""

from __future__ import annotations

import json
import secrets
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ml_connector.cli.app import ExitCode, app, err_console, exit_code_for, print_error
from ml_connector.cli.context import ConfigOption, config_path, load, open_connector, open_store
from ml_connector.cli.preview import TABLE_LIMIT, dumps, preview_document, print_preview
from ml_connector.cli.progress import phase_progress
from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.fixes import config_fix
from ml_connector.engine import (
    Connector,
    FlowOptions,
    RunReport,
    Step,
    process_inbox,
    replay_flows,
    requeue_failed,
    run_flow,
)
from ml_connector.engine.failures import describe
from ml_connector.engine.flows import run_step
from ml_connector.engine.report import UNFINISHED, crash_dir, write_crash_report
from ml_connector.errors import ConfigError
from ml_connector.store import (
    FAILED_STATES,
    PARKED,
    PENDING_CREATE,
    PENDING_UPDATE,
    RECORD_STATES,
    RETRY,
    SYNCED,
    RecordRow,
    Store,
)

console = Console()


def _flows(connector: Connector, name: str | None) -> list[str]:
    if name:
        return [connector.config.flow(name).name]
    return [f.name for f in connector.config.flows if f.enabled]


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set ``stop``: runs end at their next safe point (between pages, batches, waits) and every
    record is left in a state the next run completes. Returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(_signum: int, _frame: object) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


FAILED = "failed"  # `records --state failed`: the failed queue, as the web UI names it
_STATE_CHOICES = (*RECORD_STATES, FAILED)


def browse_url(jira_url: str, jira_key: str | None) -> str | None:
    """The issue's page in Jira, the link the README promises."""
    return f"{jira_url.rstrip('/')}/browse/{jira_key}" if jira_key else None


def record_json(r: RecordRow, jira_url: str | None = None) -> dict[str, Any]:
    """One line of ``records --json``: a stable shape scripts can rely on."""
    return {
        "flow": r.flow,
        "key": r.ifs_key,
        "state": r.state,
        "jira_key": r.jira_key,
        "jira_url": browse_url(jira_url, r.jira_key) if jira_url else None,
        "jira_id": r.jira_id,
        "attempts": r.attempts,
        "error": r.last_error,
    }


def _summary(reports: list[RunReport], *, dry_run: bool) -> None:
    table = Table(title="Dry run: nothing was written" if dry_run else "Sync summary")
    columns = ["flow", "kind", "status"]
    keys = sorted({k for r in reports for k in r.counts})
    for col in columns + keys:
        table.add_column(col, justify="right" if col in keys else "left")
    for r in reports:
        table.add_row(r.flow, r.kind, r.status, *(str(r.counts.get(k, 0)) for k in keys))
    console.print(table)
    waited = sum(r.rate_limit_wait_s for r in reports)
    if waited >= 0.1:  # back-pressure, not failure: say where the time went
        console.print(
            f"Waited {waited:.1f} s for rate limits (429s, Jira quota resets) across the runs' calls.", highlight=False
        )
    points = sum(r.quota_points for r in reports)
    if points:
        console.print(f"Used {points} Jira quota points (OAuth points quota, as its headers told).", highlight=False)


def _parked(connector: Connector, flows: list[str]) -> int:
    """Parked records of ``flows`` (0 when the store cannot say: this only adds a hint to the summary)."""
    try:
        counts = connector.store.records.count_by_flow_state()
    except Exception:
        return 0
    return sum(n for (name, state), n in counts.items() if state == PARKED and name in flows)


class _Runs:
    """The reports of one command, and the steps that failed: one flow stopping never stops the others."""

    def __init__(self, config: ConnectorConfig) -> None:
        self.reports: list[RunReport] = []
        self.errors: list[BaseException] = []
        self.config = config
        self.crash_directory = crash_dir(config.store.url)

    def add(self, steps: Iterable[Step | None]) -> None:
        """Keep each step's report; say what stopped a step (with a crash report for an unexpected error)."""
        for step in steps:
            if step is None:
                continue
            self.reports.append(step.report)
            if step.error is None:
                continue
            self.errors.append(step.error)
            where = f"{step.report.flow} ({step.kind})"
            crash = (
                write_crash_report(step.error, directory=self.crash_directory, where=where) if step.crashed else None
            )
            print_error(step.error, where=where, report=crash)
            fix = config_fix(self.config, step.error)
            if fix:  # the same config key `ml-connector check` would name
                err_console.print(f"  fix: {escape(fix)}", highlight=False, soft_wrap=True)

    def exit_code(self) -> ExitCode:
        """An unexpected error first, then the first stopped flow's error, then records not synced."""
        codes = [exit_code_for(e) for e in self.errors]
        if ExitCode.INTERNAL in codes:
            return ExitCode.INTERNAL
        if codes:
            return codes[0]
        if any(r.status != "succeeded" for r in self.reports):
            return ExitCode.RECORDS_FAILED
        return ExitCode.OK


def _next_steps(reports: list[RunReport], *, dry_run: bool, parked_before: int = 0) -> None:
    """Say what was not synced, the top reasons, and what to do about it. ``parked_before``: records parked by
    earlier runs (they do not make this run partial, but the operator should know they wait)."""
    totals: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    for r in reports:
        totals.update({k: r.counts[k] for k in UNFINISHED if r.counts[k]})
        reasons.update(r.reasons)
    if not totals:
        if parked_before and not dry_run:
            console.print(
                f"{parked_before} record(s) parked by earlier runs wait in the failed queue "
                "(`ml-connector records --state parked`; `ml-connector replay --failed` once the cause is fixed).",
                highlight=False,
            )
        return
    labels = {
        "would_fail": "would fail",
        "failed": "failed (retried on a later run)",
        "deferred": "deferred (rate limited or unconfirmed; retried on a later run)",
        "parked": "parked in the failed queue",
    }
    parts = [f"{totals[k]} {labels[k]}" for k in labels if totals[k]]
    if totals["waiting"]:
        parts.append(f"{totals['waiting']} wait for a retry or a confirmation (this run's and earlier ones)")
    console.print(f"Not every record is synced: {'; '.join(parts)}.", highlight=False)
    if reasons and not dry_run:  # a dry run listed every reason with its fix above
        console.print("Top reasons:", highlight=False)
        for (error_class, message), count in reasons.most_common(3):
            console.print(f"  {count} x {error_class}: {escape(message)}", highlight=False, soft_wrap=True)
    if dry_run:
        return
    console.print(
        "Next step: fix the cause, then run `ml-connector replay --failed` (records waiting for a retry are also "
        "picked up by the next sync; `ml-connector records --state parked` lists the failed queue).",
        highlight=False,
    )


@app.command()
def sync(
    flow: str | None = typer.Option(None, "--flow", "-f", help="Run only this flow."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and print; write nothing to IFS, Jira or the store."),
    full: bool = typer.Option(False, "--full", help="Ignore the cursor and read every record matching the filter."),
    no_writeback: bool = typer.Option(False, "--no-writeback", help="Skip the Jira → IFS status write-back."),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=0, help=f"Dry run: records shown per flow (default {TABLE_LIMIT}; all with --json)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Dry run: one JSON document instead of the tables."),
    config: Path | None = ConfigOption,
) -> None:
    """Run the flows once: IFS → Jira, then Jira status → IFS."""
    if (as_json or limit is not None) and not dry_run:
        raise ConfigError("--json and --limit show a dry run's preview: add --dry-run")
    connector = open_connector(config)
    runs = _Runs(connector.config)
    restore = _stop_on_signals(connector.stopping)
    # Every step reports on its own, so a failed outbound run still leaves the write-back to run; the inbox (shared by
    # all flows) is drained once at the end.
    options = FlowOptions(
        dry_run=dry_run,
        full=full,
        writeback=not no_writeback,
        inbox=False,
        keep_going=True,
        record_crash=False,
        preview_limit=limit if limit is not None or as_json else TABLE_LIMIT,
    )
    try:
        for name in _flows(connector, flow):
            with phase_progress(err_console, name) as progress:  # stderr: stdout keeps only the results
                run = run_flow(
                    connector, connector.config.flow(name), stop=connector.stopping, options=options, progress=progress
                )
            runs.add(run.steps)
        if not dry_run and not no_writeback:
            runs.add([_inbox(connector)])
        parked = _parked(connector, _flows(connector, flow))
    finally:
        restore()
        connector.close()
    if as_json:
        typer.echo(dumps(preview_document(runs.reports, [describe(e) for e in runs.errors])))
    else:
        if dry_run:
            print_preview(console, runs.reports, limit)
        _summary(runs.reports, dry_run=dry_run)
    if connector.stopping.is_set():
        err_console.print("Stopped by a signal at a safe point; the next `ml-connector sync` completes the rest.")
    if not as_json:
        _next_steps(runs.reports, dry_run=dry_run, parked_before=parked)
    code = runs.exit_code()
    if code != ExitCode.OK:
        raise typer.Exit(code)


def _inbox(connector: Connector) -> Step | None:
    """The webhook inbox, drained once for all flows; a step only when it applied something."""

    def drain() -> RunReport | None:
        report = process_inbox(connector, stop=connector.stopping)
        return report if report is not None and report.counts else None

    return run_step(connector, "*", "webhook", drain, observe=None, record_crash=False)


def _health(last_status: str | None, retrying: int, parked: int) -> str:
    """The flow's honest state: a succeeded last run does not hide records waiting in the failed queue."""
    if parked:
        return f"[bold red]{parked} parked[/]" + (f", {retrying} retrying" if retrying else "")
    if retrying:
        return f"[yellow]{retrying} retrying[/]"
    return last_status or "never run"


@app.command()
def status(config: Path | None = ConfigOption) -> None:
    """Per flow: cursor, last runs, record counts, the failed queue and the flow's overall state."""
    cfg, store = open_store(config)
    counts = store.records.count_by_flow_state()
    table = Table(title="Flows")
    for col in ("flow", "schedule", "cursor", "last run", "result", "synced", "pending", "retry", "parked", "state"):
        table.add_column(col, overflow="fold")
    for flow in cfg.flows:
        last = store.runs.last(flow.name)
        count = {state: counts.get((flow.name, state), 0) for state in RECORD_STATES}
        table.add_row(
            escape(flow.name),
            flow.schedule or "-",
            escape(store.cursors.get(flow.name) or "-"),
            last.started_at.strftime("%Y-%m-%d %H:%M:%S") if last else "never",
            f"{last.status} ({last.kind})" if last else "-",
            str(count[SYNCED]),
            str(count[PENDING_CREATE] + count[PENDING_UPDATE]),
            str(count[RETRY]),
            str(count[PARKED]),
            _health(last.status if last else None, count[RETRY], count[PARKED]),
        )
    console.print(table)
    for flow in cfg.flows:
        outbound = store.runs.last(flow.name, kind="outbound")
        if outbound is not None and outbound.counts.get("not_found_alert"):
            console.print(
                f"[bold red]alert[/] {flow.name}: run #{outbound.id} saw too many Jira 404s "
                f"({outbound.counts.get('not_found', 0)} issues) and recreated nothing; check the connector user's "
                "permissions and archived projects (ml-connector audit shows the records)"
            )
    store.close()


def _list_records(store: Store, flow: str | None, state: str | None, limit: int) -> list[RecordRow]:
    if state != FAILED:
        return store.records.list(flow=flow, state=state, limit=limit)
    rows = [r for s in FAILED_STATES for r in store.records.list(flow=flow, state=s, limit=limit)]
    return sorted(rows, key=lambda r: r.id)[:limit]


@app.command()
def records(
    flow: str | None = typer.Option(None, "--flow", "-f"),
    state: str | None = typer.Option(
        None, "--state", "-s", help=f"One of: {', '.join(_STATE_CHOICES)} ({FAILED} = {' + '.join(FAILED_STATES)})."
    ),
    limit: int = typer.Option(50, "--limit", "-n"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    config: Path | None = ConfigOption,
) -> None:
    """List records with their Jira link and state."""
    if state is not None and state not in _STATE_CHOICES:
        raise ConfigError(f"unknown state {state!r}; use one of {', '.join(_STATE_CHOICES)}")
    cfg, store = open_store(config)
    jira_url = str(cfg.jira.url)
    rows = _list_records(store, flow, state, limit)
    store.close()
    if as_json:
        for r in rows:
            typer.echo(json.dumps(record_json(r, jira_url)))
        return
    table = Table(title=f"Records ({len(rows)})")
    for col in ("flow", "IFS key", "state", "Jira", "status in IFS", "attempts", "last error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.flow,
            escape(r.ifs_key),
            r.state,
            browse_url(jira_url, r.jira_key) or "-",
            r.written_status or "-",
            str(r.attempts),
            escape((r.last_error or "")[:80]),
        )
    console.print(table)


@app.command()
def audit(
    key: str = typer.Argument(..., help="IFS key (PO number, WO id) or Jira key."),
    flow: str | None = typer.Option(None, "--flow", "-f"),
    config: Path | None = ConfigOption,
) -> None:
    """The whole audit trail of one record."""
    _, store = open_store(config)
    matches = [
        r
        for r in store.records.find(key)
        if (r.ifs_key == key or r.jira_key == key) and (flow is None or r.flow == flow)
    ]
    if not matches:
        store.close()
        console.print(f"no record with key {escape(key)!r}")
        raise typer.Exit(ExitCode.ERROR)
    for record in matches:
        console.print(
            f"[bold]{escape(record.flow)} {escape(record.ifs_key)}[/] → {record.jira_key or '(no issue)'} "
            f"state={record.state}"
        )
        table = Table()
        for col in ("time (UTC)", "run", "event", "outcome", "message"):
            table.add_column(col)
        for event in store.audit.trail(record.id):
            table.add_row(
                event.at.strftime("%Y-%m-%d %H:%M:%S"),
                str(event.run_id or "-"),
                event.event,
                event.outcome,
                escape(event.message or ""),
            )
        console.print(table)
    store.close()


@app.command()
def replay(
    keys: list[str] = typer.Argument(None, help="IFS or Jira keys to replay."),
    flow: str | None = typer.Option(None, "--flow", "-f"),
    failed: bool = typer.Option(False, "--failed", help="Every record in the failed queue (parked or retrying)."),
    since: datetime | None = typer.Option(None, "--since", help="Failed records updated since (ISO time, UTC)."),
    config: Path | None = ConfigOption,
) -> None:
    """Re-queue failed records and sync them through the normal path."""
    if not keys and not failed and since is None:
        raise ConfigError("say what to replay: KEY..., --failed (with --flow to narrow) or --since TIME")
    connector = open_connector(config)
    runs = _Runs(connector.config)
    restore = _stop_on_signals(connector.stopping)
    try:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        queued = requeue_failed(connector.store, flow=flow, keys=keys or (), since=since)
        console.print(f"re-queued {len(queued)} record(s)")
        for run in replay_flows(connector, sorted({r.flow for r in queued}), stop=connector.stopping):
            runs.add(run.steps)
    finally:
        restore()
        connector.close()
    if runs.reports:
        _summary(runs.reports, dry_run=False)
        _next_steps(runs.reports, dry_run=False)
    code = runs.exit_code()
    if code != ExitCode.OK:
        raise typer.Exit(code)


@app.command()
def init(
    path: Path = typer.Argument(Path("ml-connector.yaml"), help="Where to write the example config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example config that works against the simulators as it stands."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; use --force to overwrite it")
    text = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    path.write_text(with_webhook_secret(text, secrets.token_urlsafe(32)), encoding="utf-8")
    path.chmod(0o600)  # it holds a secret now
    console.print(
        f"wrote {path}. Lines marked '# <- CHANGE' are the ones to edit for real tenants; then run "
        f"`ml-connector check -c {path}`, `ml-connector sync --dry-run -c {path}`, `ml-connector run -c {path}`."
    )
    console.print(
        f"A random webhook secret is in {path} (jira.webhook_secret; JIRA_WEBHOOK_SECRET overrides it). With Basic "
        "auth, paste it into the Secret field of the admin webhook (Jira settings → System → WebHooks) whose URL is "
        "<web.public_url>/webhooks/jira. With OAuth the connector registers its webhook itself and Jira signs "
        "deliveries with the app's client secret. Webhooks stay off until webhooks.enabled is true."
    )


_SECRET_LINE = "  # webhook_secret: written by `ml-connector init`"


def with_webhook_secret(template: str, secret: str) -> str:
    """The example config with its webhook secret line filled in (the template ships none: no usable default)."""
    lines = template.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(_SECRET_LINE):
            lines[i] = (
                f"  webhook_secret: ${{JIRA_WEBHOOK_SECRET:-{secret}}}  # generated by init; paste it into Jira\n"
            )
            return "".join(lines)
    raise AssertionError("the example config lost its webhook_secret line")


__all__ = ["audit", "config_path", "init", "load", "records", "replay", "status", "sync"]
