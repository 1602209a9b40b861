"""Rendering a dry run: the table an operator reads and the JSON document a script reads."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from ml_connector.cli.preview import dumps, field_lines, plan_table, preview_document, print_preview
from ml_connector.config.models import load_config
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.reasons import UNMAPPED_PROJECT, Reason

EXAMPLE = Path(__file__).parents[3] / "src" / "ml_connector" / "config" / "templates" / "example.yaml"
CONFIG = load_config(EXAMPLE, env={})
PROJECT = "no project mapped for ProjectId='PRJ-1005' and no default"
FIX = "add 'PRJ-1005' under flows[0].mapping.project.map (or set flows[0].mapping.project.default)"
CAUSE = Reason(UNMAPPED_PROJECT, "PRJ-1005")


def report() -> RunReport:
    r = RunReport("purchase_orders", "outbound", dry_run=True, plan_limit=3)
    r.add("fetched", 5)
    r.add("would_create")
    r.add("would_update")
    r.add("would_fail", 3)
    r.keep_planned(
        PlannedAction("PO-1", "create", "PO PO-1: Pumps", fields={"Project": "PROC", "Cost Center (select)": "CC-100"})
    )
    r.keep_planned(
        PlannedAction(
            "PO-2",
            "update",
            "PO PO-2: Valves",
            fields={"Summary": {"from": "PO PO-2: Pump", "to": "PO PO-2: Valves"}, "Labels": {"add": ["urgent"]}},
            warnings=["no Jira user for x@example.com; left unassigned"],
        )
    )
    for key in ("PO-3", "PO-4", "PO-5"):
        r.keep_planned(PlannedAction(key, "fail", reason=PROJECT, error_class="MappingError", fix=FIX, cause=CAUSE))
        r.note_cause(CAUSE, PROJECT)
    return r


def rendered(*reports: RunReport, limit: int | None = None) -> str:
    out = Console(width=200, record=True)
    print_preview(out, CONFIG, list(reports), limit)
    return " ".join(out.export_text().split())


def test_field_lines_show_values_changes_and_added_labels() -> None:
    create, update = report().plan[:2]
    assert field_lines(create) == ["Project: PROC", "Cost Center (select): CC-100"]
    assert field_lines(update) == ["Summary: PO PO-2: Pump → PO PO-2: Valves", "Labels: + urgent"]


def test_table_shows_the_kept_records_and_every_failure_grouped() -> None:
    text = rendered(report())
    assert "purchase_orders: what would be written (first 3 of 5 records)" in text
    assert "Cost Center (select): CC-100" in text and "left unassigned" in text
    assert "PO-3" in text and "PO-4" not in text  # the limit: three records kept
    # The same lines as a real sync's "Why": per flow, count, label and values, then the fix.
    assert f"Would fail (purchase_orders): 3 x no project mapped: 'PRJ-1005' x3 fix: {FIX}" in text


def test_limit_narrows_the_table_further() -> None:
    table = plan_table(report(), 1)
    assert table is not None and table.row_count == 1
    assert plan_table(RunReport("work_orders", "outbound", dry_run=True), None) is None


def test_json_document_has_records_totals_and_failures_by_reason() -> None:
    other = RunReport("work_orders", "outbound", dry_run=True)
    other.add("would_create", 2)
    writeback = RunReport("purchase_orders", "writeback", dry_run=True)
    document = json.loads(dumps(preview_document(CONFIG, [report(), other, writeback], ["jira: refused"])))
    assert document["dry_run"] is True and document["errors"] == ["jira: refused"]
    assert document["totals"] == {"fetched": 5, "would_create": 3, "would_fail": 3, "would_update": 1}
    po = document["flows"][0]
    assert [r["key"] for r in po["records"]] == ["PO-1", "PO-2", "PO-3"]
    assert po["records"][1]["fields"]["Summary"] == {"from": "PO PO-2: Pump", "to": "PO PO-2: Valves"}
    assert po["records"][2] == {
        "key": "PO-3",
        "action": "fail",
        "summary": None,
        "fields": {},
        "warnings": [],
        "reason": PROJECT,
        "reason_code": UNMAPPED_PROJECT,
        "error_class": "MappingError",
        "fix": FIX,
    }
    group = {
        "reason": UNMAPPED_PROJECT,
        "label": "no project mapped",
        "count": 3,
        "values": [{"value": "PRJ-1005", "count": 3}],
        "example": PROJECT,
        "fix": FIX,
        "flow": "purchase_orders",
    }
    expected = [group]
    assert po["failures"] == expected and document["failures"] == expected
    assert "records" not in document["flows"][2]  # a write-back step has no record previews
