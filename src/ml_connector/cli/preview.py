"""``sync --dry-run`` output: per record the issue that would be created or the fields that would change, and the
failures of the whole batch grouped by reason (as a table, or one JSON document with ``--json``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ml_connector.engine.failures import group_reasons
from ml_connector.engine.report import PlannedAction, RunReport

TABLE_LIMIT = 50  # records shown per flow in the table when --limit is not given
_VALUE_MAX = 80  # a long description is cut in the table (the JSON keeps it whole)


def _shown(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else "-" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= _VALUE_MAX else text[: _VALUE_MAX - 1] + "…"


def field_lines(action: PlannedAction) -> list[str]:
    """``Name: value`` per field of a create; ``Name: old → new`` (or ``Labels: + a, b``) per change of an update."""
    lines: list[str] = []
    for name, value in action.fields.items():
        if action.action == "update" and isinstance(value, dict) and "add" in value:
            lines.append(f"{name}: + {_shown(value['add'])}")
        elif action.action == "update" and isinstance(value, dict):
            lines.append(f"{name}: {_shown(value.get('from'))} → {_shown(value.get('to'))}")
        else:
            lines.append(f"{name}: {_shown(value)}")
    return lines


def plan_table(report: RunReport, limit: int | None) -> Table | None:
    """The previews of one flow's dry run (the first ``limit``), or None when there are none."""
    shown = report.plan[:limit] if limit is not None else report.plan
    if not shown:
        return None
    total = sum(n for k, n in report.counts.items() if k.startswith("would_"))
    table = Table(
        title=f"{report.flow}: what would be written (first {len(shown)} of {total} records)", show_lines=True
    )
    for col in ("IFS key", "action", "fields (by Jira name)", "notes"):
        table.add_column(col, overflow="fold")
    for action in shown:
        if action.action == "fail":
            notes = [f"{action.error_class}: {action.reason}", *([f"fix: {action.fix}"] if action.fix else [])]
            fields = "-"
        elif action.action == "skip":
            notes, fields = ["unchanged"], "-"
        else:
            notes = action.warnings
            fields = "\n".join(field_lines(action)) or "(nothing changes)"
        table.add_row(escape(action.key), action.action, escape(fields), escape("\n".join(notes)))
    return table


def print_failure_groups(out: Console, reports: Sequence[RunReport]) -> None:
    """Every reason records would fail, with its count over the whole batch and the fix."""
    groups = group_reasons(reports)
    if not groups:
        return
    out.print(f"Would fail, by reason ({sum(g.count for g in groups)} records):", highlight=False)
    for group in groups:
        where = ", ".join(group.flows)
        out.print(f"  {group.count} x {group.error_class}: {escape(group.message)} (in {where})", highlight=False)
        if group.fix:
            out.print(f"    fix: {escape(group.fix)}", highlight=False)


def print_preview(out: Console, reports: Sequence[RunReport], limit: int | None) -> None:
    for report in reports:
        if report.kind == "outbound" and (table := plan_table(report, limit)) is not None:
            out.print(table)
    print_failure_groups(out, [r for r in reports if r.kind == "outbound"])


def preview_document(reports: Sequence[RunReport], errors: Sequence[str] = ()) -> dict[str, Any]:
    """``sync --dry-run --json``: per flow its counts and record previews, the batch's totals and its failures
    grouped by reason (counts over every record, whatever ``--limit`` kept)."""
    totals: Counter[str] = Counter()
    flows: list[dict[str, Any]] = []
    for report in reports:
        totals.update(report.counts)
        entry = report.as_dict()
        if report.kind == "outbound":
            entry["records"] = [a.as_dict() for a in report.plan]
            entry["failures"] = [g.as_dict() for g in group_reasons([report])]
        flows.append(entry)
    return {
        "dry_run": True,
        "flows": flows,
        "totals": dict(sorted(totals.items())),
        "failures": [g.as_dict() for g in group_reasons([r for r in reports if r.kind == "outbound"])],
        "errors": list(errors),
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)
