"""The Jinja2 mapping templates: the same output as the retired single-brace renderer, and a sandbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ml_connector.errors import ConfigError, MappingError
from ml_connector.template import check_template, convert_old, render, resolve_value

RECORD: dict[str, Any] = {
    "OrderNo": "PO-1",
    "Description": "  Pumps ",
    "Empty": "",
    "Nothing": None,
    "Flag": True,
    "Whole": 10.0,
    "Half": 10.5,
    "Count": 3,
    "Stamp": "2025-01-31T10:00:00Z",
    "When": datetime(2025, 1, 31, 10, 0),
    "supplier": None,
    "person": {"Name": "Bo Chen"},
    "lines": [{"CodeA": "4000"}],
    "line": {"CodeA": "4000"},
}

# (old template, new template, what the old renderer printed for RECORD): written by hand from the old rules.
CONVERSIONS = [
    ("{OrderNo}", "{{ OrderNo }}", "PO-1"),
    ("PO {OrderNo}: {Description|trim}", "PO {{ OrderNo }}: {{ Description|trim }}", "PO PO-1: Pumps"),
    ("{Description|trim|upper}", "{{ Description|trim|upper }}", "PUMPS"),
    ("{Description|lower}", "{{ Description|lower }}", "  pumps "),
    ("{Nothing|upper}", "{{ Nothing|upper }}", ""),
    ("{Nothing|lower}", "{{ Nothing|lower }}", ""),
    ("{Nothing|trim}", "{{ Nothing|trim }}", ""),
    ("{Nothing}", "{{ Nothing }}", ""),
    ("{Nothing|or:(none)}", "{{ Nothing or '(none)' }}", "(none)"),
    ("{Empty|or:(none)}", "{{ Empty or '(none)' }}", "(none)"),
    ("{OrderNo|or:(none)}", "{{ OrderNo or '(none)' }}", "PO-1"),
    ("{Nothing|or:it's}", "{{ Nothing or 'it\\'s' }}", "it's"),
    ("{Nothing|or:none|upper}", "{{ (Nothing or 'none')|upper }}", "NONE"),
    ("{supplier.Name}", "{{ supplier.Name }}", ""),
    ("{supplier.Name|or:(unknown supplier)}", "{{ supplier.Name or '(unknown supplier)' }}", "(unknown supplier)"),
    ("{person.Name|upper}", "{{ person.Name|upper }}", "BO CHEN"),
    ("{person.Email}", "{{ person.Email }}", ""),
    ("{line.CodeA}", "{{ line.CodeA }}", "4000"),
    ("{lines[0].CodeA}", "{{ lines[0].CodeA }}", "4000"),
    ("{lines[3].CodeA}", "{{ lines[3].CodeA }}", ""),
    ("{Flag}", "{{ Flag }}", "true"),
    ("{Whole}", "{{ Whole }}", "10"),
    ("{Half}", "{{ Half }}", "10.5"),
    ("{Count}", "{{ Count }}", "3"),
    ("{Stamp|date}", "{{ Stamp|date }}", "2025-01-31"),
    ("{When|date}", "{{ When|date }}", "2025-01-31"),
    ("{When}", "{{ When }}", "2025-01-31T10:00:00"),
    ("{{literal}} {OrderNo}", "{{ '{' }}literal{{ '}' }} {{ OrderNo }}", "{literal} PO-1"),
]


@pytest.mark.parametrize(("old", "new", "printed"), CONVERSIONS)
def test_new_templates_print_what_the_old_ones_did(old: str, new: str, printed: str) -> None:
    assert convert_old(old) == new
    check_template(new, path="t", fields=[k for k in RECORD if k not in ("supplier", "person", "lines", "line")])
    assert render(new, RECORD) == printed


@pytest.mark.parametrize("old", [old for old, _, _ in CONVERSIONS if "{{literal}}" not in old])
def test_old_syntax_is_refused_with_the_conversion(old: str) -> None:
    with pytest.raises(ConfigError, match="old single-brace syntax") as err:
        check_template(old, path="flows[0].mapping.summary")
    assert err.value.path == "flows[0].mapping.summary"
    assert repr(convert_old(old)) in str(err.value)


def test_value_sources_are_expressions_or_templates() -> None:
    record = {"WorkTypeId": "CM", "PriorityId": 1, "supplier": {"Tier": "T1"}}
    assert resolve_value("supplier.Tier", record) == "T1"
    assert resolve_value("PriorityId", record) == 1  # a bare expression keeps the value's type
    assert resolve_value("{{ WorkTypeId }}-{{ PriorityId }}", record) == "CM-1"
    assert resolve_value("Missing", record) is None
    check_template("supplier.Tier", path="p", fields=["WorkTypeId"], source_of=True)
    with pytest.raises(ConfigError, match="unknown field 'Tier'"):
        check_template("Tier", path="p", fields=["WorkTypeId"], source_of=True)


def test_unknown_field_names_the_path_and_what_is_available() -> None:
    with pytest.raises(ConfigError) as err:
        check_template("{{ OrderNo }}", path="flows[0].mapping.summary", fields=["OrderNumber"])
    assert str(err.value) == (
        "flows[0].mapping.summary: unknown field 'OrderNo' in template '{{ OrderNo }}' — fields available: "
        "OrderNumber, supplier, person, project, lines, line, flow, key"
    )
    check_template("{{ OrderNo }}", path="x", fields=None)  # the flow reads every field: names are not known


def test_loop_variables_are_not_fields() -> None:
    template = "{% for l in lines %}{{ l.CodeA }};{% endfor %}"
    check_template(template, path="x", fields=[])
    assert render(template, {"lines": [{"CodeA": "1"}, {"CodeA": "2"}]}) == "1;2;"


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__ }}", "{{ OrderNo.__class__.__mro__ }}", "{{ lines['__class__'] }}", "{{ x._private }}"],
)
def test_the_sandbox_refuses_internals_at_load(template: str) -> None:
    with pytest.raises(ConfigError, match="internal attribute") as err:
        check_template(template, path="flows[0].mapping.summary")
    assert err.value.path == "flows[0].mapping.summary"


def test_the_sandbox_refuses_internals_at_render_too() -> None:
    with pytest.raises(MappingError, match=r"refused|unsafe"):
        render("{{ OrderNo.__class__ }}", {"OrderNo": "PO-1"})
    with pytest.raises(MappingError, match="unsafe"):
        render("{{ OrderNo.format.__globals__ }}", {"OrderNo": "PO-1"})


def test_a_field_the_record_lacks_is_an_error_not_a_blank() -> None:
    with pytest.raises(MappingError, match="'OrderNo' is undefined"):
        render("PO {{ OrderNo }}", {})


def test_syntax_and_filter_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="No filter named 'shout'"):
        check_template("{{ OrderNo|shout }}", path="x")
    with pytest.raises(ConfigError, match="not valid"):
        check_template("{{ OrderNo ", path="x")


def test_output_is_text_not_html() -> None:
    assert render("{{ Description }}", {"Description": "<b>A & B</b>"}) == "<b>A & B</b>"


def test_a_value_source_reading_below_a_missing_field_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="'Missing' is undefined"):
        resolve_value("Missing.Tier", {})
