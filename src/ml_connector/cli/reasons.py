"""Failure and warning reasons as the CLI prints them: grouped by code, the values with their counts, and the fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.fixes import reason_fix
from ml_connector.engine.report import RunReport
from ml_connector.reasons import Reason, label
from ml_connector.store import FailureGroup, RunRow

TOP_REASONS = 3  # reasons shown per flow; the rest are summed in one line
TOP_VALUES = 3  # values shown per reason
# Worst first: the outcome `status` shows for a flow is the worst of its latest run of each kind.
SEVERITY = {"failed": 4, "interrupted": 3, "partial": 2, "running": 1, "succeeded": 0}


def groups_of(flow: str, counted: Counter[Reason]) -> list[FailureGroup]:
    """A run's counted reasons as groups (the shape the store's ``failure_groups`` returns), largest first."""
    values: dict[str, list[tuple[str | None, int]]] = {}
    for reason, n in counted.items():
        values.setdefault(reason.code, []).append((reason.value, n))
    groups = [
        FailureGroup(flow, code, sum(n for _, n in found), tuple(sorted(found, key=lambda v: (-v[1], v[0] or ""))))
        for code, found in values.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.reason))


def per_flow(
    reports: Iterable[RunReport], counted: Callable[[RunReport], Counter[Reason]]
) -> list[tuple[str, list[FailureGroup]]]:
    """Per flow (in run order), the reasons its reports counted (``causes`` or ``notes``), grouped."""
    flows: dict[str, Counter[Reason]] = {}
    for report in reports:
        flows.setdefault(report.flow, Counter()).update(counted(report))
    return [(flow, groups_of(flow, found)) for flow, found in flows.items()]


def value_counts(group: FailureGroup, limit: int = TOP_VALUES) -> str:
    """``'PRJ-1005' x120, 'PRJ-1007' x40, 2 more`` (empty when the reason carries no value; a blank value beside
    others shows as ``(blank)``)."""
    if all(v is None for v, _ in group.values):
        return ""
    parts = [f"{v!r} x{n}" if v is not None else f"(blank) x{n}" for v, n in group.values[:limit]]
    if len(group.values) > limit:
        parts.append(f"{len(group.values) - limit} more")
    return ", ".join(parts)


def reason_lines(
    config: ConnectorConfig,
    groups: Sequence[FailureGroup],
    examples: dict[str, str] | None = None,
    top: int | None = TOP_REASONS,
) -> list[tuple[int, str]]:
    """(indent, Rich markup) lines: per reason its count, label and values, then ``fix:``; at most ``top`` reasons
    (None: all)."""
    lines: list[tuple[int, str]] = []
    for group in groups[:top]:
        detail = value_counts(group) or (examples or {}).get(group.reason, "")
        head = f"{group.count} x {label(group.reason)}" + (f": {detail}" if detail else "")
        fix = reason_fix(config, group.flow, group.reason, (v for v, _ in group.values))
        lines += [(2, escape(head)), (4, f"[bold]fix:[/] {escape(fix)}")]
    rest = groups[top:] if top is not None else []
    if rest:
        lines.append((2, f"{sum(g.count for g in rest)} more, for {len(rest)} other reason(s)"))
    return lines


def print_reasons(
    console: Console,
    config: ConnectorConfig,
    title: str,
    by_flow: Iterable[tuple[str, Sequence[FailureGroup]]],
    examples: dict[str, str] | None = None,
    *,
    top: int | None = TOP_REASONS,
) -> None:
    """``title (flow):`` then the flow's reason lines (at most ``top`` reasons), for each flow that has any."""
    for flow, groups in by_flow:
        if not groups:
            continue
        console.print(f"{title} ({escape(flow)}):", highlight=False)
        for indent, line in reason_lines(config, groups, examples, top):
            # Hanging indent: a line wrapped at the terminal's width stays under its reason.
            console.print(Padding(Text.from_markup(line), (0, 0, 0, indent), expand=False), highlight=False)


def worst_recent(runs: Iterable[RunRow]) -> RunRow | None:
    """The worst outcome among the flow's latest real run of each kind (``runs`` newest first)."""
    latest: dict[str, RunRow] = {}
    for run in runs:
        if not run.dry_run:
            latest.setdefault(run.kind, run)
    return max(latest.values(), key=lambda r: (SEVERITY.get(r.status, 0), r.id), default=None)
