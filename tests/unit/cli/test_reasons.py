"""cli/reasons.py: a run's reasons grouped like the store groups them, printed with counts and the fix, and the
worst recent outcome `status` shows."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from ml_connector import reasons
from ml_connector.cli.reasons import groups_of, print_reasons, value_counts, worst_recent
from ml_connector.config.models import ConnectorConfig, load_config
from ml_connector.reasons import Reason
from ml_connector.store import FailureGroup, RunRow

EXAMPLE = Path(__file__).parents[3] / "src" / "ml_connector" / "config" / "templates" / "example.yaml"
AT = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.fixture
def config() -> ConnectorConfig:
    return load_config(EXAMPLE, env={})


def test_groups_of_a_run_match_the_store_shape_largest_first() -> None:
    counted = Counter(
        {
            Reason(reasons.UNMAPPED_PROJECT, "PRJ-1005"): 120,
            Reason(reasons.UNMAPPED_PROJECT, "PRJ-1007"): 40,
            Reason(reasons.SUMMARY_TOO_LONG): 3,
        }
    )
    assert groups_of("po", counted) == [
        FailureGroup("po", reasons.UNMAPPED_PROJECT, 160, (("PRJ-1005", 120), ("PRJ-1007", 40))),
        FailureGroup("po", reasons.SUMMARY_TOO_LONG, 3, ((None, 3),)),
    ]


def test_value_counts_show_the_top_values_blank_ones_and_how_many_more() -> None:
    values = (("A", 5), (None, 4), ("B", 3), ("C", 2), ("D", 1))
    assert value_counts(FailureGroup("po", "x", 15, values)) == "'A' x5, (blank) x4, 'B' x3, 2 more"
    assert value_counts(FailureGroup("po", "x", 4, ((None, 4),))) == ""


def test_printed_reasons_wrap_at_80_columns_under_their_reason(config: ConnectorConfig) -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    groups = [
        FailureGroup("purchase_orders", reasons.UNMAPPED_PROJECT, 160, (("PRJ-1005", 120), ("PRJ-1007", 40))),
        *[FailureGroup("purchase_orders", f"code_{i}", 1, ((None, 1),)) for i in range(4)],
    ]
    print_reasons(console, config, "Why", [("purchase_orders", groups), ("work_orders", [])])
    lines = out.getvalue().splitlines()
    assert lines[0] == "Why (purchase_orders):"
    assert lines[1] == "  160 x no project mapped: 'PRJ-1005' x120, 'PRJ-1007' x40"
    assert lines[2].startswith("    fix: add 'PRJ-1005', 'PRJ-1007' under flows[0].mapping.project.map")
    assert all(len(line) <= 80 for line in lines)
    assert all(line.startswith("    ") for line in lines[3:4])  # a wrapped fix stays indented
    assert lines[-1] == "  2 more, for 2 other reason(s)"  # three reasons shown, the rest summed
    assert "work_orders" not in out.getvalue()


def _run(run_id: int, kind: str, status: str, *, dry_run: bool = False) -> RunRow:
    return RunRow(run_id, "po", kind, AT, AT, status, dry_run)


def test_worst_recent_is_the_worst_of_the_latest_run_of_each_kind() -> None:
    newest_first = [
        _run(5, "writeback", "succeeded"),
        _run(4, "outbound", "partial"),
        _run(3, "outbound", "failed"),  # older than the latest outbound: not recent any more
        _run(2, "writeback", "failed"),
    ]
    worst = worst_recent(newest_first)
    assert worst is not None and (worst.id, worst.status) == (4, "partial")
    assert worst_recent([_run(7, "outbound", "failed", dry_run=True), _run(6, "outbound", "succeeded")]) == (
        _run(6, "outbound", "succeeded")
    )
    assert worst_recent([]) is None
