"""The dry run's previewer: plans in, per record the fields a run would write, by Jira field name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml_connector.config.models import FlowConfig
from ml_connector.engine.plan import Create, Fail, Skip, Update
from ml_connector.engine.preview import Previewer
from ml_connector.engine.report import RunReport
from ml_connector.errors import MappingError
from ml_connector.jira.fields import FieldRegistry
from ml_connector.mapping import FieldTarget, IssueDraft
from ml_connector.reasons import NOT_A_NUMBER, UNMAPPED_PROJECT, Reason
from ml_connector.store import SYNCED, RecordRow

FLOW = FlowConfig.model_validate(
    {
        "name": "purchase_orders",
        "preset": "purchase_orders",
        "mapping": {
            "project": {"source": "ProjectId", "default": "PROC"},
            "issue_type": "Purchase Order",
            "summary": "PO {{ OrderNo }}",
            "assignee": {"source": "BuyerCode", "fallback_email": "Lead@Example.com"},
            "custom_fields": {"Cost Center:text": "{{ CodeB }}", "Cost Center:select": "x", "Amount": "{{ A }}"},
        },
    }
)
REGISTRY = FieldRegistry(
    [
        {"id": "summary", "name": "Summary"},
        {"id": "customfield_10050", "name": "Cost Center", "custom": True,
         "schema": {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"}},
        {"id": "customfield_10051", "name": "Cost Center", "custom": True,
         "schema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select"}},
        {"id": "customfield_10070", "name": "Amount", "custom": True,
         "schema": {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}},
    ]
)  # fmt: skip
TARGETS = {
    "Cost Center:text": FieldTarget("customfield_10050", "text"),
    "Cost Center:select": FieldTarget("customfield_10051", "select"),
    "Amount": FieldTarget("customfield_10070", "number"),
}
ACCOUNTS = {"bo@example.com": "acc-bo", "lead@example.com": "acc-lead", "gone@example.com": None}


def draft(summary: str = "PO 1: Pumps", **overrides: Any) -> IssueDraft:
    values: dict[str, Any] = {
        "project": "PROC",
        "issue_type": "Purchase Order",
        "summary": summary,
        "description": "Line one\n\nLine two",
        "priority": "High",
        "assignee_email": "bo@example.com",
        "custom_fields": {"Cost Center:text": "CC100", "Cost Center:select": "CC-100", "Amount": "12.5"},
        "labels": ("mlc-purchase_orders-1", "ifs-po"),
        "identity_label": "mlc-purchase_orders-1",
    }
    values.update(overrides)
    return IssueDraft(**values)


class Lookups:
    """Counts the account lookups the previewer makes (each email once per run)."""

    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    def __call__(self, emails: set[str]) -> Mapping[str, str | None]:
        self.asked.append(set(emails))
        return {e: ACCOUNTS.get(e) for e in emails}


def previewer(lookups: Lookups | None = None) -> Previewer:
    return Previewer(FLOW, lambda: (TARGETS, REGISTRY), lookups or Lookups(), flows=[FLOW])


def stored(old: IssueDraft) -> RecordRow:
    return RecordRow(id=1, flow="purchase_orders", ifs_key="1", state=SYNCED, jira_id="10001", draft=old.as_dict())


def test_create_shows_every_field_by_name_with_readable_values() -> None:
    action = previewer().preview(Create("1", {}, "h", draft()))
    assert action.action == "create"
    assert action.fields == {
        "Project": "PROC",
        "Issue Type": "Purchase Order",
        "Summary": "PO 1: Pumps",
        "Labels": ["mlc-purchase_orders-1", "ifs-po"],
        "Description": "Line one\n\nLine two",
        "Priority": "High",
        "Assignee": "bo@example.com",  # the email people know, not the account id
        "Cost Center (textfield)": "CC100",  # two fields share the name: their type tells them apart
        "Cost Center (select)": "CC-100",
        "Amount": 12.5,
    }
    assert action.warnings == []


def test_assignee_without_a_jira_user_shows_the_fallback_and_warns() -> None:
    lookups = Lookups()
    p = previewer(lookups)
    report = RunReport("purchase_orders", "outbound", dry_run=True)
    p.add_page([Create("1", {}, "h", draft(assignee_email="gone@example.com"))], report)
    p.add_page([Create("2", {}, "h", draft(assignee_email="gone@example.com"))], report)
    [first, _] = report.plan
    assert first.fields["Assignee"] == "lead@example.com"
    assert first.warnings == ["no Jira user for gone@example.com; assigned to the fallback lead@example.com"]
    assert lookups.asked == [{"gone@example.com", "lead@example.com"}]  # once per run, not per page


def test_update_shows_only_what_changes() -> None:
    old = draft()
    new = draft(summary="PO 1: Valves", labels=("mlc-purchase_orders-1", "ifs-po", "urgent"))
    action = previewer().preview(Update("1", {}, "h", new, stored(old)))
    assert action.action == "update"
    assert action.fields == {
        "Summary": {"from": "PO 1: Pumps", "to": "PO 1: Valves"},
        "Labels": {"add": ["urgent"]},
    }


def test_update_never_shows_a_project_move() -> None:
    action = previewer().preview(Update("1", {}, "h", draft(project="CAPEX"), stored(draft())))
    assert action.fields == {}  # an edit never moves an issue (apply.edit_payload): nothing would change


def test_a_payload_the_run_cannot_build_fails_the_record_with_its_fix() -> None:
    bad = draft(custom_fields={"Amount": "twelve"})
    report = RunReport("purchase_orders", "outbound", dry_run=True)
    previewer().add_page([Create("1", {}, "h", bad), Skip("2", {}, "h")], report)
    failed, skipped = report.plan
    assert (failed.action, failed.error_class) == ("fail", "MappingError")
    assert failed.reason == "'twelve' is not a number for Jira field 'Amount'"
    assert failed.fix == (
        "change the template flows[0].mapping.custom_fields.Amount: it gives 'twelve', and Jira field 'Amount' "
        "takes numbers"
    )
    assert failed.cause == Reason(NOT_A_NUMBER, "Amount=twelve")
    assert skipped.action == "skip"
    assert report.counts == {"would_fail": 1, "would_skip": 1}
    # Counted by reason code and value, as a real run counts its failures (RunReport.causes).
    assert report.causes == {Reason(NOT_A_NUMBER, "Amount=twelve"): 1}
    assert report.examples == {NOT_A_NUMBER: "'twelve' is not a number for Jira field 'Amount'"}


def test_limit_keeps_a_few_previews_and_counts_all() -> None:
    report = RunReport("purchase_orders", "outbound", dry_run=True, plan_limit=2)
    error = MappingError("no project mapped for ProjectId='PRJ-1005' and no default", field="project",
                         value="PRJ-1005", unmapped=True, reason=UNMAPPED_PROJECT)  # fmt: skip
    plans = [Create(str(i), {}, "h", draft()) for i in range(3)] + [Fail(str(i), {}, "h", error) for i in range(3, 7)]
    previewer().add_page(plans, report)
    assert [a.key for a in report.plan] == ["0", "1"]
    assert report.counts == {"would_create": 3, "would_fail": 4}
    assert report.causes == {Reason(UNMAPPED_PROJECT, "PRJ-1005"): 4}
    failed = previewer().preview(Fail("3", {}, "h", error))
    assert failed.fix == ("add 'PRJ-1005' under flows[0].mapping.project.map (or set flows[0].mapping.project.default)")


def test_skips_need_no_jira_metadata() -> None:
    def no_metadata() -> Any:
        raise AssertionError("a page of skips made a Jira lookup")

    report = RunReport("purchase_orders", "outbound", dry_run=True)
    Previewer(FLOW, no_metadata, Lookups(), flows=[FLOW]).add_page([Skip("1", {}, "h"), Skip("2", {}, "h")], report)
    assert report.counts == {"would_skip": 2}
