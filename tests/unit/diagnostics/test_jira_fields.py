"""Custom fields as ``check`` reports them: the id each resolves to, or the failure with how to fix the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_connector.diagnostics.jira_fields import check_custom_fields
from ml_connector.diagnostics.results import FAIL, PASS, Findings
from ml_connector.jira.fields import FieldRegistry

from ..jira.test_fields import FIELDS
from .helpers import example

WHERE = "flows[0]"


def _check(tmp_path: Path, custom_fields: dict[str, str]) -> tuple[dict[str, str], Findings]:
    def change(data: dict[str, Any]) -> None:
        data["flows"][0]["mapping"]["custom_fields"] = custom_fields

    flow = example(tmp_path, change).flows[0]
    findings = Findings(())
    return check_custom_fields(findings, FieldRegistry(FIELDS), WHERE, flow), findings


def test_resolved_fields_pass_with_their_ids(tmp_path: Path) -> None:
    resolved, findings = _check(tmp_path, {"gl account": "{{ OrderNo }}", "Cost Center:select": "{{ OrderNo }}"})
    assert resolved == {"gl account": "customfield_10050", "Cost Center:select": "customfield_10051"}
    assert [(r.name, r.status, r.detail) for r in findings.results] == [
        ("purchase_orders: field 'gl account'", PASS, "resolves to customfield_10050"),
        ("purchase_orders: field 'Cost Center:select'", PASS, "resolves to customfield_10051"),
    ]


def test_an_ambiguous_name_fails_with_both_ids_and_a_type_suffix_to_pick_one(tmp_path: Path) -> None:
    resolved, findings = _check(tmp_path, {"Cost Center": "{{ OrderNo }}"})
    assert resolved == {}
    [result] = findings.results
    assert result.status == FAIL and "ambiguous" in result.detail
    assert result.fix == (
        f"in {WHERE}.mapping.custom_fields write the field id (customfield_10051 or customfield_10060) "
        "or add a type suffix, e.g. 'Cost Center:text' or 'Cost Center:select'"
    )


def test_a_missing_field_fails_with_the_fix_to_correct_or_create_it(tmp_path: Path) -> None:
    resolved, findings = _check(tmp_path, {"Nope": "{{ OrderNo }}", "GL Account": "{{ OrderNo }}"})
    assert resolved == {"GL Account": "customfield_10050"}
    failed = findings.results[0]
    assert (failed.status, failed.detail) == (FAIL, "no Jira field named 'Nope' is visible to the connector's user")
    assert failed.fix == f"correct the field name in {WHERE}.mapping.custom_fields, or create the field in Jira"
