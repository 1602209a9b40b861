"""Connector commands: sync, status, records, audit, replay, init."""

from __future__ import annotations

import secrets
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ml_connector.cli.app import ExitCode, app, err_console, exit_code_for, print_error
from ml_connector.cli.context import ConfigOption, config_path, load, open_connector, open_store
from ml_connector.cli.preview import TABLE_LIMIT, dumps, preview_document, print_preview
from ml_connector.cli.progress import phase_progress
from ml_connector.cli.reasons import per_flow, print_reasons, worst_recent
from ml_connector.cli.records_output import (
    RecordsFormat,
    record_json,
    records_format,
    render_records,
)
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
from ml_connector.engine.timestamps import parse_ts
from ml_connector.errors import ConfigError
from ml_connector.jira.links import browse_url
from ml_connector.mapping.changes import custom_field_names, trail_changes
from ml_connector.store import (
    FAILED_STATES,
    PARKED,
    PENDING_CREATE,
    PENDING_UPDATE,
    RECORD_STATES,
    RETRY,
    SYNCED,
    FailureGroup,
    RecordRow,
    RunRow,
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


_RECENT_RUNS = 20  # runs read per flow for `status` (enough to hold the latest of each kind)
FAILED = "failed"  # `records --state failed`: the failed queue, as the web UI names it
_STATE_CHOICES = (*RECORD_STATES, FAILED)


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


def _failure_groups(connector: Connector, flows: list[str]) -> list[FailureGroup]:
    """The failed queue's reasons for ``flows`` (none when the store cannot say: this only adds to the summary)."""
    try:
        return [g for g in connector.store.records.failure_groups() if g.flow in flows]
    except Exception:
        return []


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


def _next_steps(
    reports: list[RunReport],
    config: ConnectorConfig,
    *,
    dry_run: bool,
    parked_before: int = 0,
    earlier: Iterable[FailureGroup] = (),
) -> None:
    """Say what was not synced, the top reasons grouped with their fixes, the warnings, and what to do next.
    ``parked_before`` and ``earlier``: records parked by earlier runs and the failed queue's reasons (they do not
    make this run partial, but the operator should know they wait and why)."""
    totals: Counter[str] = Counter()
    for r in reports:
        totals.update({k: r.counts[k] for k in UNFINISHED if r.counts[k]})
    _print_warnings(reports, config)
    if not totals:
        if parked_before and not dry_run:
            console.print(
                f"{parked_before} record(s) parked by earlier runs wait in the failed queue "
                "(`ml-connector records --state parked`; `ml-connector replay --failed` once the cause is fixed).",
                highlight=False,
            )
            by_flow: dict[str, list[FailureGroup]] = {}
            for group in earlier:
                by_flow.setdefault(group.flow, []).append(group)
            print_reasons(console, config, "Failed queue", by_flow.items())
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
    if not dry_run:  # a dry run listed every reason with its fix above
        examples = {code: text for r in reports for code, text in r.examples.items()}
        print_reasons(console, config, "Why", per_flow(reports, lambda r: r.causes), examples)
    if dry_run:
        return
    console.print(
        "Next step: fix the cause, then run `ml-connector replay --failed` (records waiting for a retry are also "
        "picked up by the next sync; `ml-connector records --state parked` lists the failed queue).",
        highlight=False,
    )


def _print_warnings(reports: list[RunReport], config: ConnectorConfig) -> None:
    """Records that synced, but not quite as mapped (no Jira user: left unassigned, ...), grouped per flow."""
    print_reasons(console, config, "Warnings", per_flow(reports, lambda r: r.notes))


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
    queue: bool = typer.Option(
        False, "--queue", help="runner.kind procrastinate: queue each flow as a job for the workers, run nothing here."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run the flows once: IFS → Jira, then Jira status → IFS."""
    if (as_json or limit is not None) and not dry_run:
        raise ConfigError("--json and --limit show a dry run's preview: add --dry-run")
    if queue:
        from ml_connector.cli.worker import defer_from_cli  # the job queue (procrastinate, web worker): --queue only
        from ml_connector.runner.jobqueue import FLOW_TASK

        cfg = load(config)
        defer_from_cli(cfg, FLOW_TASK, [cfg.flow(flow).name] if flow else [f.name for f in cfg.flows if f.enabled])
        return
    connector = open_connector(config)
    connector.keep_metadata = not dry_run  # a dry run writes nothing, kept metadata included
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
            if run.lease_lost:
                err_console.print(
                    f"[bold red]Flow {name}: its lease in the store was lost (another process may run it now)[/]; "
                    "the run stopped at a safe point. Check the store's health; the next sync completes the rest."
                )
        if not dry_run and not no_writeback:
            runs.add([_inbox(connector)])
        parked = _parked(connector, _flows(connector, flow))
        earlier = _failure_groups(connector, _flows(connector, flow)) if parked else []
    finally:
        restore()
        connector.close()
    if as_json:
        typer.echo(dumps(preview_document(connector.config, runs.reports, [describe(e) for e in runs.errors])))
    else:
        if dry_run:
            print_preview(console, connector.config, runs.reports, limit)
        _summary(runs.reports, dry_run=dry_run)
    if connector.stopping.is_set():
        err_console.print("Stopped by a signal at a safe point; the next `ml-connector sync` completes the rest.")
    if not as_json:
        _next_steps(runs.reports, connector.config, dry_run=dry_run, parked_before=parked, earlier=earlier)
    code = runs.exit_code()
    if code != ExitCode.OK:
        raise typer.Exit(code)


def _inbox(connector: Connector) -> Step | None:
    """The webhook inbox, drained once for all flows; a step only when it applied something."""

    def drain() -> RunReport | None:
        report = process_inbox(connector, stop=connector.stopping)
        return report if report is not None and report.counts else None

    return run_step(connector, "*", "webhook", drain, observe=None, record_crash=False)


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"


def _outcome(worst: RunRow | None, retrying: int, parked: int) -> str:
    """The flow's honest state: the worst of its latest runs, and the failed queue a succeeded run does not hide."""
    if worst is None:
        text = "never run"
    else:
        style = {"failed": "bold red", "interrupted": "yellow", "partial": "yellow"}.get(worst.status)
        kind = "write-back" if worst.kind == "writeback" else worst.kind
        text = f"[{style}]{worst.status}[/] ({kind})" if style else worst.status
    if parked:
        text += f", [bold red]{parked} parked[/]"
    if retrying:
        text += f", [yellow]{retrying} retrying[/]"
    return text


@app.command()
def status(config: Path | None = ConfigOption) -> None:
    """Per flow: the worst recent outcome, record counts, and why records failed with the fix for each."""
    cfg, store = open_store(config)
    counts = store.records.count_by_flow_state()
    groups = store.records.failure_groups()
    table = Table(title="Flows", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("flow", overflow="fold")
    table.add_column("worst recent outcome", overflow="fold", min_width=14)
    for col in ("synced", "pending", "retry", "parked"):
        table.add_column(col, justify="right", no_wrap=True)
    details: list[str] = []
    for flow in cfg.flows:
        runs = store.runs.recent(flow=flow.name, limit=_RECENT_RUNS)
        last = next((r for r in runs if not r.dry_run), None)
        count = {state: counts.get((flow.name, state), 0) for state in RECORD_STATES}
        table.add_row(
            escape(flow.name),
            _outcome(worst_recent(runs), count[RETRY], count[PARKED]),
            str(count[SYNCED]),
            str(count[PENDING_CREATE] + count[PENDING_UPDATE]),
            str(count[RETRY]),
            str(count[PARKED]),
        )
        cursor = parse_ts(store.cursors.get(flow.name))
        details.append(
            f"{escape(flow.name)}: last run {_when(last.started_at if last else None)}, "
            f"schedule {escape(flow.schedule or 'none')}, cursor {_when(cursor)}"
        )
    console.print(table)
    for line in details:
        console.print(line, highlight=False)
    print_reasons(
        console, cfg, "Failed records", [(f.name, [g for g in groups if g.flow == f.name]) for f in cfg.flows]
    )
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
    output: RecordsFormat | None = typer.Option(
        None, "--format", help="table (default), json (one object per line) or csv (a header row, for spreadsheets)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    config: Path | None = ConfigOption,
) -> None:
    """List records with their Jira link and state."""
    if state is not None and state not in _STATE_CHOICES:
        raise ConfigError(f"unknown state {state!r}; use one of {', '.join(_STATE_CHOICES)}")
    fmt = records_format(output, as_json=as_json)
    cfg, store = open_store(config)
    jira_url = str(cfg.jira.url)
    rows = _list_records(store, flow, state, limit)
    store.close()
    if fmt != RecordsFormat.TABLE:
        typer.echo(render_records(rows, fmt, jira_url), nl=False)
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
    """The whole audit trail of one record, with the fields each step changed."""
    cfg, store = open_store(config)
    names = custom_field_names(cfg)
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
        for col in ("time (UTC)", "run", "event", "outcome", "message", "changes"):
            table.add_column(col, overflow="fold")
        trail = store.audit.trail(record.id)
        for event, changes in zip(trail, trail_changes(trail, names), strict=True):
            table.add_row(
                event.at.strftime("%Y-%m-%d %H:%M:%S"),
                str(event.run_id or "-"),
                event.event,
                event.outcome,
                escape(event.message or ""),
                escape("\n".join(str(c) for c in changes)),
            )
        console.print(table)
    store.close()


@app.command()
def replay(
    keys: list[str] = typer.Argument(None, help="IFS or Jira keys to replay."),
    flow: str | None = typer.Option(None, "--flow", "-f"),
    failed: bool = typer.Option(False, "--failed", help="Every record in the failed queue (parked or retrying)."),
    since: datetime | None = typer.Option(None, "--since", help="Failed records updated since (ISO time, UTC)."),
    queue: bool = typer.Option(
        False, "--queue", help="runner.kind procrastinate: the workers send the re-queued records, as jobs."
    ),
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
        if queue:
            from ml_connector.cli.worker import defer_from_cli  # the job queue's imports: --queue only
            from ml_connector.runner.jobqueue import REPLAY_TASK

            defer_from_cli(connector.config, REPLAY_TASK, sorted({r.flow for r in queued}))
            return
        for run in replay_flows(connector, sorted({r.flow for r in queued}), stop=connector.stopping):
            runs.add(run.steps)
    finally:
        restore()
        connector.close()
    if runs.reports:
        _summary(runs.reports, dry_run=False)
        _next_steps(runs.reports, connector.config, dry_run=False)
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


__all__ = ["audit", "config_path", "init", "load", "record_json", "records", "replay", "status", "sync"]
