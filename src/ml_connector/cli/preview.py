"""``sync --dry-run`` output: per record the issue that would be created or the fields that would change, and the
failures of the whole batch grouped by reason (as a table, or one JSON document with ``--json``).

The failures are grouped as a real sync's "Why" lines group them (per flow, by reason code, ``cli.reasons``), with
the same fix (``diagnostics.fixes.reason_fix``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ml_connector.cli.reasons import per_flow, print_reasons
from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.fixes import reason_fix
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.reasons import label
from ml_connector.store import FailureGroup

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


def _outbound(reports: Sequence[RunReport]) -> list[RunReport]:
    return [r for r in reports if r.kind == "outbound"]


def _examples(reports: Sequence[RunReport]) -> dict[str, str]:
    return {code: text for r in reports for code, text in r.examples.items()}


def print_failure_groups(out: Console, config: ConnectorConfig, reports: Sequence[RunReport]) -> None:
    """Every reason records would fail, per flow, with its count over the whole batch, its values and the fix."""
    outbound = _outbound(reports)
    print_reasons(out, config, "Would fail", per_flow(outbound, lambda r: r.causes), _examples(outbound), top=None)


def print_preview(out: Console, config: ConnectorConfig, reports: Sequence[RunReport], limit: int | None) -> None:
    for report in _outbound(reports):
        if (table := plan_table(report, limit)) is not None:
            out.print(table)
    print_failure_groups(out, config, reports)


def failure_groups(config: ConnectorConfig, reports: Sequence[RunReport]) -> list[dict[str, Any]]:
    """The failures of ``reports`` per flow and reason code, largest first: count, values with their counts, an
    example message, the fix."""
    examples = _examples(reports)

    def entry(group: FailureGroup) -> dict[str, Any]:
        return {
            "reason": group.reason,
            "label": label(group.reason),
            "count": group.count,
            "values": [{"value": v, "count": n} for v, n in group.values],
            "example": examples.get(group.reason),
            "fix": reason_fix(config, group.flow, group.reason, (v for v, _ in group.values)),
            "flow": group.flow,
        }

    groups = [entry(g) for _, found in per_flow(reports, lambda r: r.causes) for g in found]
    return sorted(groups, key=lambda g: -int(g["count"]))


def preview_document(
    config: ConnectorConfig, reports: Sequence[RunReport], errors: Sequence[str] = ()
) -> dict[str, Any]:
    """``sync --dry-run --json``: per flow its counts and record previews, the batch's totals and its failures
    grouped by reason (counts over every record, whatever ``--limit`` kept)."""
    totals: Counter[str] = Counter()
    flows: list[dict[str, Any]] = []
    for report in reports:
        totals.update(report.counts)
        entry = report.as_dict()
        if report.kind == "outbound":
            entry["records"] = [a.as_dict() for a in report.plan]
            entry["failures"] = failure_groups(config, [report])
        flows.append(entry)
    return {
        "dry_run": True,
        "flows": flows,
        "totals": dict(sorted(totals.items())),
        "failures": failure_groups(config, _outbound(reports)),
        "errors": list(errors),
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)
