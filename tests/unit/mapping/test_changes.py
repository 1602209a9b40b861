"""Field-level changes from the audit trail: by field name, old → new, derived from consecutive entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config.models import ConnectorConfig, load_config
from ml_connector.mapping.changes import (
    SOURCE_MAX_CHARS,
    SOURCE_VALUE_MAX,
    FieldChange,
    bounded_source,
    bounded_source_whole,
    custom_field_names,
    draft_changes,
    latest_source,
    trail_changes,
)


@dataclass
class Entry:
    event: str
    detail: Mapping[str, Any] | None = None


def _draft(**changes: Any) -> dict[str, Any]:
    draft: dict[str, Any] = {
        "project": "PROC",
        "issue_type": "Purchase Order",
        "summary": "PO 1: pumps",
        "description": "two pumps",
        "priority": "Medium",
        "assignee_email": None,
        "custom_fields": {"Cost Center:select": "CC-100", "customfield_10050": "4100"},
        "labels": ["ifs-po"],
        "identity_label": "mlc-purchase_orders-1",
    }
    draft.update(changes)
    return draft


@pytest.fixture
def example_config(tmp_path: Path) -> ConnectorConfig:
    """The configuration `ml-connector init` writes."""
    text = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(text + f"\nstore:\n  url: sqlite:///{tmp_path / 's.sqlite'}\n", encoding="utf-8")
    return load_config(path, env={"IFS_URL": "http://127.0.0.1:9", "JIRA_URL": "http://127.0.0.1:9"})


NAMES = {"Cost Center:select": "Cost Center", "customfield_10050": "GL Account"}


def test_a_changed_custom_field_is_named_with_old_and_new_value() -> None:
    before = _draft()
    after = _draft(custom_fields={"Cost Center:select": "CC-100", "customfield_10050": "4200"})
    assert draft_changes(before, after, NAMES) == [FieldChange("GL Account", "4100", "4200")]
    assert str(FieldChange("GL Account", "4100", "4200")) == "GL Account: 4100 → 4200"


def test_the_first_draft_sets_every_field_and_the_identity_label_is_not_a_change() -> None:
    changes = draft_changes(None, _draft(), NAMES)
    fields = [c.field for c in changes]
    assert fields == [
        "Project",
        "Issue type",
        "Summary",
        "Description",
        "Priority",
        "Labels",
        "Cost Center",
        "GL Account",
    ]
    assert all(c.old is None for c in changes)
    assert "Assignee" not in fields  # unset before and after


def test_removed_values_and_lists() -> None:
    after = _draft(priority=None, labels=["ifs-po", "urgent"], custom_fields={"Cost Center:select": "CC-100"})
    assert draft_changes(_draft(), after, NAMES) == [
        FieldChange("Priority", "Medium", None),
        FieldChange("Labels", "ifs-po", "ifs-po, urgent"),
        FieldChange("GL Account", "4100", None),
    ]


def test_an_unnamed_key_is_shown_as_configured() -> None:
    changes = draft_changes(None, _draft(custom_fields={"customfield_1": "x"}), {})
    assert FieldChange("customfield_1", None, "x") in changes


def test_trail_changes_compare_each_entry_with_the_previous_one_of_its_kind() -> None:
    trail = [
        Entry("fetched", {"source_ts": "2026-01-01T00:00:00Z"}),
        Entry("mapped", {"draft": _draft()}),
        Entry("mapped", None),  # a warning-only event has no draft: it changes nothing
        Entry("created", {"jira_id": "10001", "jira_key": "PROC-1"}),
        Entry("mapped", {"draft": _draft(summary="PO 1: three pumps")}),
        Entry("updated", {"jira_id": "10001", "fields": ["summary"]}),
        Entry("written_back", {"status": "In Progress", "changes": {"Cf_Jira_Status": "In Progress"}}),
        Entry("written_back", {"status": "Done", "changes": {"Cf_Jira_Status": "Done"}}),
        Entry("failed", {"error_class": "Rejected"}),
    ]
    changes = trail_changes(trail, NAMES)
    assert len(changes) == len(trail)
    assert changes[0] == [] and changes[2] == [] and changes[5] == [] and changes[8] == []
    assert len(changes[1]) == 8
    assert changes[3] == [FieldChange("Jira issue", None, "PROC-1")]
    assert changes[4] == [FieldChange("Summary", "PO 1: pumps", "PO 1: three pumps")]
    assert changes[6] == [FieldChange("IFS Cf_Jira_Status", None, "In Progress")]
    assert changes[7] == [FieldChange("IFS Cf_Jira_Status", "In Progress", "Done")]


def test_malformed_details_change_nothing() -> None:
    trail = [Entry("mapped", {"draft": "not a dict"}), Entry("written_back", {"changes": ["x"]}), Entry("created", {})]
    assert trail_changes(trail, NAMES) == [[], [], []]


def test_custom_field_names_from_config_and_registry(example_config: ConnectorConfig) -> None:
    names = custom_field_names(example_config)
    # Two Jira fields named Cost Center: the configured type tells them apart.
    assert names["Cost Center:text"] == "Cost Center (text)"
    assert names["Cost Center:select"] == "Cost Center (select)"
    assert names["GL Account"] == "GL Account"
    po = example_config.flow("purchase_orders")
    po.mapping.custom_fields["customfield_10077"] = "{{ OrderNo }}"
    assert custom_field_names(example_config)["customfield_10077"] == "customfield_10077"
    registry = {"customfield_10077": "Budget Owner"}
    assert custom_field_names(example_config, registry)["customfield_10077"] == "Budget Owner"


def test_bounded_source_drops_annotations_and_caps_size() -> None:
    row = {"@odata.etag": 'W/"x"', "OrderNo": "PO-1", "Note": "n" * 2000, "When": object()}
    kept = bounded_source(row)
    assert "@odata.etag" not in kept and kept["OrderNo"] == "PO-1"
    assert len(kept["Note"]) == SOURCE_VALUE_MAX + 1 and kept["Note"].endswith("…")
    assert isinstance(kept["When"], str)
    big = {f"Field{i:03d}": "v" * 100 for i in range(200)}
    capped = bounded_source(big)
    assert len(str(capped)) < SOURCE_MAX_CHARS + 2000
    assert "Field199" in capped["…omitted"] and "Field000" in capped


def test_bounded_source_says_whether_it_kept_the_row_as_it_is() -> None:
    row = {"@odata.etag": 'W/"x"', "OrderNo": "PO-1", "Amount": 1.5, "Open": True, "Note": None}
    assert bounded_source_whole(row) == ({k: v for k, v in row.items() if k != "@odata.etag"}, True)
    for changed in ({"Note": "n" * 2000}, {"Lines": [1, 2]}, {f"F{i:03d}": "v" * 100 for i in range(200)}):
        kept, whole = bounded_source_whole({**row, **changed})
        assert not whole and kept == bounded_source({**row, **changed})


def test_latest_source_is_the_newest_stored_row() -> None:
    trail = [Entry("mapped", {"source": {"A": 1}}), Entry("created", {}), Entry("failed", {"source": {"A": 2}})]
    assert latest_source(trail) == {"A": 2}
    assert latest_source([Entry("fetched", {"source_ts": "x"})]) is None
