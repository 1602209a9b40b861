"""Field validation, the changelog item a change leaves, transition screens and Jira's offset pages, without HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.common import ApiError, offset_page
from ml_connector.sim.jira.core import JiraSim
from ml_connector.sim.jira.fields import find_project
from ml_connector.sim.jira.model import Issue


@pytest.fixture
def sim() -> Iterator[JiraSim]:
    site = JiraSim()
    yield site
    site.close()


def _issue(sim: JiraSim, project: str = "PROC", issuetype: str = "10001") -> Issue:
    now = sim.now()
    return Issue(1, f"{project}-1", project, issuetype, seed.PROJECTS[project].workflow.initial, now, now, now)


@pytest.mark.parametrize(
    ("fid", "value", "error"),
    [
        ("summary", "two\nlines", "newline"),
        ("summary", "x" * 256, "less than 255"),
        ("summary", 5, "must be a string"),
        ("labels", ["has space"], "contains spaces"),
        ("labels", [""], "must not be empty"),
        ("labels", "solo", "array of strings"),
        ("priority", {"name": "Urgent"}, "invalid"),
        ("priority", "High", "string format"),
        ("assignee", {"accountId": "nobody"}, "does not exist"),
        ("duedate", "31/12/2025", "Error parsing date"),
        ("customfield_10051", {"value": "CC-999"}, "not valid"),
        ("customfield_10051", {"id": "1"}, "not valid"),
        ("customfield_10050", "x" * 256, "too long"),
        ("customfield_99999", "x", "cannot be set"),
    ],
)
def test_bad_values_are_refused_with_jiras_message(sim: JiraSim, fid: str, value: Any, error: str) -> None:
    message, raw = sim.fields.check_value(fid, value)
    assert message is not None and error in message and raw is None


def test_good_values_are_normalised(sim: JiraSim) -> None:
    assert sim.fields.check_value("summary", "  padded  ") == (None, "padded")
    assert sim.fields.check_value("labels", ["a", "b", "a"]) == (None, ["a", "b"])
    assert sim.fields.check_value("priority", {"name": "High"}) == (None, "2")
    option = seed.CUSTOM_FIELDS["customfield_10051"].options[0]
    assert sim.fields.check_value("customfield_10051", {"value": option[1]}) == (None, option[0])
    assert sim.fields.check_value("assignee", {"accountId": sim.me.account_id}) == (None, sim.me.account_id)


def test_update_operations_and_their_refusals(sim: JiraSim) -> None:
    issue = _issue(sim)
    issue.labels = ["keep", "drop"]
    project = seed.PROJECTS["PROC"]
    update = {"labels": [{"add": "new"}, {"remove": "drop"}], "summary": [{"set": "S"}]}
    errors, changes = sim.fields.apply_fields(issue, project, {}, update, creating=False)
    assert dict(changes)["labels"] == ["keep", "new"] and dict(changes)["summary"] == "S"
    assert "labels" not in errors
    errors, _ = sim.fields.apply_fields(
        issue,
        project,
        {"summary": "A"},
        {"summary": [{"set": "B"}], "labels": [{"explode": "x"}], "duedate": [{"add": "x"}], "priority": {}},
        creating=False,
    )
    assert "both fields and update" in errors["summary"]
    assert "not supported" in errors["labels"]
    assert "Only the 'set' operation" in errors["duedate"]
    assert "list of operations" in errors["priority"]


def test_required_and_off_screen_fields(sim: JiraSim) -> None:
    project = seed.PROJECTS["MAINT"]
    probe = _issue(sim, "MAINT", "10003")
    errors, _ = sim.fields.apply_fields(probe, project, {"customfield_10052": "S"}, {}, creating=True)
    assert errors["summary"] == "You must specify a summary of the issue."
    assert errors["customfield_10053"] == "IFS Reference is required."
    assert "not on the appropriate screen" in errors["customfield_10052"]  # Supplier is not on MAINT screens


def test_change_items_show_names_and_ids(sim: JiraSim) -> None:
    item = sim.fields.change_item("priority", "3", "1")
    assert (item["from"], item["fromString"], item["to"], item["toString"]) == ("3", "Medium", "1", "Highest")
    custom = sim.fields.change_item("customfield_10050", None, "GL-1")
    assert custom["field"] == "GL Account" and custom["fieldtype"] == "custom" and custom["from"] is None
    assert sim.fields.change_item("labels", ["a", "b"], None)["fromString"] == "a b"


def test_transition_screen_requires_a_valid_resolution(sim: JiraSim) -> None:
    issue = sim.create_issue(
        {
            "fields": {
                "project": {"key": "MAINT"},
                "issuetype": {"id": "10003"},
                "summary": "fix",
                "customfield_10053": "WO-1",
            }
        },
        sim.me.account_id,
        notify=False,
    )
    sim.do_transition(issue.key, {"transition": {"id": "4"}}, sim.me.account_id)
    for fields, field_error in [({}, "Resolution is required."), ({"resolution": {"name": "Nope"}}, "invalid")]:
        with pytest.raises(ApiError) as exc:
            sim.do_transition(issue.key, {"transition": {"id": "5"}, "fields": fields}, sim.me.account_id)
        body: dict[str, Any] = exc.value.body
        assert field_error in body["errors"]["resolution"]
    sim.do_transition(
        issue.key, {"transition": {"id": "5"}, "fields": {"resolution": {"name": "Done"}}}, sim.me.account_id
    )
    assert issue.resolution is not None and seed.STATUSES[issue.status].name == "Resolved"


def test_offset_pages() -> None:
    items = list(range(5))
    page = offset_page(items, 3, 2, str)
    assert page == {"isLast": True, "maxResults": 2, "startAt": 3, "total": 5, "values": ["3", "4"]}
    assert offset_page(items, 0, 2, str)["isLast"] is False
    assert offset_page(items, 9, 2, str)["values"] == []


def test_projects_resolve_by_key_id_or_any_case() -> None:
    assert find_project("proc") is find_project(seed.PROJECTS["PROC"].id) is seed.PROJECTS["PROC"]
    with pytest.raises(ApiError) as exc:
        find_project("NOPE")
    assert exc.value.status == 404
