from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ml_connector import reasons
from ml_connector.config.models import load_config
from ml_connector.errors import MappingError
from ml_connector.mapping import (
    FieldTarget,
    MappingContext,
    build_issue_fields,
    clean_text,
    identity_label,
    map_issue,
    map_status,
    mapping_problems,
)
from ml_connector.mapping.issue import _CONTROL, IssueDraft, stable_hash
from ml_connector.store.db import json_dumps, safe_json

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(EXAMPLE.read_text())
    return load_config(path, env={})


CTX = MappingContext(
    suppliers={"S1": {"SupplierId": "S1", "Name": "Acme", "Cf_Supplier_Tier": "T1"}},
    persons={"BCHEN": {"PersonId": "BCHEN", "Email": "Bo.Chen@Example.com"}},
    jira_projects=frozenset({"PROC", "MAINT", "CAPEX"}),
    priorities=frozenset({"Highest", "High", "Medium", "Low", "Lowest"}),
)
PO = {
    "OrderNo": "PO-1",
    "VendorNo": "S1",
    "Description": "Pumps",
    "BuyerCode": "BCHEN",
    "ProjectId": None,
    "Contract": "S01",
    "TotalAmount": 10.0,
    "CurrencyCode": "EUR",
}
LINES = [{"OrderNo": "PO-1", "CodeA": "4000", "CodeB": "CC100"}]


def test_purchase_order_maps_priority_from_tier_and_assignee_from_buyer(config: Any) -> None:
    draft = map_issue(PO, config.flow("purchase_orders"), CTX, lines=LINES)
    assert draft.project == "PROC"
    assert draft.summary == "PO PO-1: Pumps"
    assert draft.priority == "High"
    assert draft.assignee_email == "bo.chen@example.com"
    assert draft.custom_fields == {
        "GL Account": "4000",
        "Cost Center:text": "CC100",
        "Cost Center:select": "CC-100",
        "Supplier": "S1",
        "IFS Reference": "PO-1",
    }
    assert draft.labels[0] == draft.identity_label == "mlc-purchase_orders-PO-1"
    assert "Acme" in (draft.description or "")


def test_unknown_person_falls_back_with_a_warning(config: Any) -> None:
    draft = map_issue({**PO, "BuyerCode": "NOBODY"}, config.flow("purchase_orders"), CTX)
    assert draft.assignee_email is None
    assert any("NOBODY" in w for w in draft.warnings)


def test_hash_ignores_warnings_and_source_only_fields(config: Any) -> None:
    flow = config.flow("purchase_orders")
    a = map_issue({**PO, "Cf_Jira_Status": "Done", "Cf_Changed_At": "2026-01-01T00:00:00Z"}, flow, CTX)
    b = map_issue({**PO, "Cf_Jira_Status": None, "Cf_Changed_At": "2026-02-01T00:00:00Z"}, flow, CTX)
    assert a.content_hash == b.content_hash  # write-back fields never cause an outbound edit (no echo)
    c = map_issue({**PO, "Description": "Valves"}, flow, CTX)
    assert c.content_hash != a.content_hash


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({**PO, "Description": "x" * 300}, "summary is"),
        ({**PO, "OrderNo": None}, "blank OrderNo; it cannot be identified"),
        ({**PO, "OrderNo": ""}, "blank OrderNo"),
        ({**PO, "OrderNo": " "}, r"blank OrderNo \(' '\)"),
        ({**PO, "OrderNo": "\t\n "}, "blank OrderNo"),
    ],
)
def test_bad_records_raise_mapping_errors(config: Any, record: dict[str, Any], reason: str) -> None:
    with pytest.raises(MappingError, match=reason):
        map_issue(record, config.flow("purchase_orders"), CTX)


def test_unknown_priority_and_unmapped_project_are_mapping_errors(config: Any) -> None:
    flow = config.flow("purchase_orders")
    strict = flow.model_copy(
        update={
            "mapping": flow.mapping.model_copy(
                update={
                    "priority": flow.mapping.priority.model_copy(update={"map": {"T1": "Urgent"}}),  # type: ignore[union-attr]
                    "project": flow.mapping.project.model_copy(update={"map": {"P9": "NOPE"}, "default": None}),
                }
            )
        }
    )
    with pytest.raises(MappingError, match="priority 'Urgent'"):
        map_issue(
            {**PO, "ProjectId": "P9"},
            strict.model_copy(update={"mapping": strict.mapping.model_copy(update={"project": flow.mapping.project})}),
            CTX,
        )
    with pytest.raises(MappingError, match="no project mapped"):
        map_issue({**PO, "ProjectId": "P1"}, strict, CTX)
    with pytest.raises(MappingError, match="'NOPE' does not exist"):
        map_issue({**PO, "ProjectId": "P9"}, strict, CTX)


def test_identity_label_is_safe_and_unique() -> None:
    a = identity_label("po", "PO 1/2")
    b = identity_label("po", "PO_1_2")
    assert " " not in a and a != b
    assert identity_label("po", "PO-1") == "mlc-po-PO-1"


def test_build_fields_uses_ids_and_field_kinds(config: Any) -> None:
    draft = map_issue(PO, config.flow("purchase_orders"), CTX, lines=LINES)
    fields = build_issue_fields(
        draft,
        field_ids={
            "GL Account": FieldTarget("customfield_10050", "text"),
            "Cost Center:text": FieldTarget("customfield_10060", "text"),
            "Cost Center:select": FieldTarget("customfield_10051", "select"),
            "Supplier": FieldTarget("customfield_10052", "select"),
            "IFS Reference": FieldTarget("customfield_10053", "text"),
        },
        account_id="acc-1",
        to_adf=lambda text: {"type": "doc", "version": 1, "content": [text]},
    )
    assert fields["customfield_10050"] == "4000"
    assert fields["customfield_10052"] == {"value": "S1"}
    assert fields["assignee"] == {"accountId": "acc-1"}
    assert fields["priority"] == {"name": "High"}
    assert fields["project"] == {"key": "PROC"}


def test_status_writeback_mapping(config: Any) -> None:
    wb = config.flow("purchase_orders").writeback
    done = map_status(wb, status="Closed", category="done", jira_key="PROC-1")
    assert done is not None and done.changes == {"Cf_Jira_Status": "Done", "Cf_Jira_Key": "PROC-1"}
    raw = map_status(wb, status="In Progress", category="indeterminate", jira_key="PROC-1")
    assert raw is not None and raw.changes["Cf_Jira_Status"] == "In Progress"


def test_control_characters_are_removed_from_text_going_to_jira_with_a_warning(config: Any) -> None:
    dirty = {**PO, "Description": "Pu\x00mps\x07 \x1b[31mred\x1b[0m\x9b", "Contract": "S\x0001"}
    draft = map_issue(dirty, config.flow("purchase_orders"), CTX, lines=LINES)
    assert draft.summary == "PO PO-1: Pumps [31mred[0m"
    assert draft.description is not None and "\x00" not in draft.description and "\x1b" not in draft.description
    for value in [draft.summary, draft.description, *draft.custom_fields.values(), *draft.labels]:
        assert not any((ord(ch) < 0x20 and ch not in "\t\n") or 0x7F <= ord(ch) <= 0x9F for ch in value), value
    (warning,) = [w for w in draft.warnings if "control characters" in w]
    assert "from summary" in warning and "from description" in warning
    clean = map_issue(PO, config.flow("purchase_orders"), CTX, lines=LINES)
    assert not any("control characters" in w for w in clean.warnings)


def test_clean_text_keeps_tab_newline_and_unicode() -> None:
    assert clean_text("a\tb\nc\r\n\u00e9\u4e2d\U0001f600") == ("a\tb\nc\n\u00e9\u4e2d\U0001f600", 1)
    assert clean_text("\x00\x01\x08\x0b\x0c\x1f\x7f\x80\x9f") == ("", 9)
    assert clean_text("\xa0ok") == ("\xa0ok", 0)


@given(text=st.text())
def test_clean_text_shortcut_for_printable_text_removes_what_the_pattern_removes(text: str) -> None:
    assert clean_text(text) == _CONTROL.subn("", text)


def test_a_decimal_as_number_or_ieee754_string_maps_alike(config: Any) -> None:
    """An IFS answering with IEEE754Compatible=true sends Edm.Decimal as a JSON string. The connector never asks for
    it, but a string must map without error, and one in the shortest form renders as the number does."""
    as_number = map_issue(PO, config.flow("purchase_orders"), CTX, lines=LINES)
    as_string = map_issue({**PO, "TotalAmount": "10"}, config.flow("purchase_orders"), CTX, lines=LINES)
    assert as_string.description == as_number.description
    assert as_string.content_hash == as_number.content_hash
    for amount in (1234.5, "1234.5", "1234.50"):
        draft = dataclasses.replace(as_number, custom_fields={"Amount": str(amount)})
        fields = build_issue_fields(
            draft,
            field_ids={"Amount": FieldTarget("customfield_10070", "number")},
            account_id=None,
            to_adf=lambda text: text,
        )
        assert fields["customfield_10070"] == 1234.5


# -- reason codes: every mapping failure and warning carries a stable code and the value that varies ----------------


def _reason_of(record: dict[str, Any], flow: Any, ctx: MappingContext = CTX) -> tuple[str | None, object | None]:
    with pytest.raises(MappingError) as caught:
        map_issue(record, flow, ctx)
    return caught.value.reason, caught.value.value


def test_mapping_errors_carry_a_reason_code_and_the_varying_value(config: Any) -> None:
    flow = config.flow("purchase_orders")
    project = flow.mapping.project.model_copy(update={"default": None})
    no_default = flow.model_copy(update={"mapping": flow.mapping.model_copy(update={"project": project})})
    assert _reason_of({**PO, "ProjectId": "PRJ-1005"}, no_default) == (reasons.UNMAPPED_PROJECT, "PRJ-1005")
    hidden = dataclasses.replace(CTX, jira_projects=frozenset({"MAINT"}))
    assert _reason_of(PO, flow, hidden) == (reasons.UNKNOWN_PROJECT, "PROC")
    assert _reason_of({**PO, "Description": "z" * 300}, flow) == (reasons.SUMMARY_TOO_LONG, None)
    assert _reason_of({**PO, "OrderNo": " "}, flow) == (reasons.BLANK_KEY, None)
    no_priorities = dataclasses.replace(CTX, priorities=frozenset({"Lowest"}))
    assert _reason_of(PO, flow, no_priorities) == (reasons.UNKNOWN_PRIORITY, "High")


def test_warnings_carry_reasons_beside_their_text(config: Any) -> None:
    draft = map_issue({**PO, "BuyerCode": "NOBODY", "Description": "bell\x07"}, config.flow("purchase_orders"), CTX)
    assert reasons.Reason(reasons.NO_EMAIL, "NOBODY") in draft.notes
    assert reasons.Reason(reasons.CONTROL_CHARACTERS) in draft.notes
    assert len(draft.notes) == len(draft.warnings)


def test_mapping_problems_lists_every_reason_not_only_the_first(config: Any) -> None:
    base = config.flow("purchase_orders")
    project = base.mapping.project.model_copy(update={"default": None})
    flow = base.model_copy(update={"mapping": base.mapping.model_copy(update={"project": project})})
    ctx = dataclasses.replace(
        CTX, fields={"Cost Center:select": FieldTarget("customfield_10051", "select", frozenset({"CC-200"}))}
    )
    record = {**PO, "ProjectId": "PRJ-1005", "VendorNo": "S1"}
    problems = mapping_problems(record, flow, dataclasses.replace(ctx, priorities=frozenset({"Low"})), lines=LINES)
    found = {(p.field, p.value, p.unmapped) for p in problems}
    assert found == {
        ("project", "PRJ-1005", True),  # no map entry and no default
        ("priority", "High", False),  # mapped, but Jira has no such priority
        ("Cost Center:select", "CC-100", False),  # mapped, but not an option of the field
    }
    assert mapping_problems({**PO, "ProjectId": "PRJ-1000"}, flow, CTX, lines=LINES) == []  # CAPEX: maps cleanly


def test_mapping_problems_reports_a_blank_key(config: Any) -> None:
    [problem] = mapping_problems({**PO, "OrderNo": " "}, config.flow("purchase_orders"), CTX, lines=LINES)
    assert problem.field == "OrderNo" and "blank OrderNo" in problem.message


_draft_texts = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["NaN", "a\x00b", "Ünï", "plain"])


@given(
    summary=_draft_texts,
    description=st.none() | _draft_texts,
    custom=st.dictionaries(st.text(max_size=6), _draft_texts, max_size=3),
    labels=st.lists(_draft_texts, max_size=2),
)
@example(summary="a\x7fb", description=None, custom={}, labels=[])  # DEL: ASCII, yet escaped by ensure_ascii
def test_a_drafts_json_text_is_what_the_audit_would_write_and_its_hash_is_unchanged(
    summary: str, description: str | None, custom: dict[str, str], labels: list[str]
) -> None:
    draft = IssueDraft("P", "Task", summary, description, None, None, custom, tuple(labels), "mlc-po-1")
    assert draft.content_hash == stable_hash(draft.as_dict())
    text = draft.json_text
    if text is not None:  # plain: the very text json_dumps(sort_keys=True) writes for the JSON-safe draft
        assert text == json_dumps(safe_json(draft.as_dict()), sort_keys=True)
    texts = [summary, description or "", *custom.values(), *labels]
    if not all(s.isascii() and "\x00" not in s and "\x7f" not in s for s in texts):
        assert text is None
