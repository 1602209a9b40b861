"""Rendering on one shared namespace per record (and plain text without Jinja) gives what Jinja's own ``render``
and expression call give, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml_connector.errors import MappingError
from ml_connector.template import (
    _compiled,
    _expression,
    _fast_expression,
    _fast_template,
    namespace,
    render,
    resolve_value,
)

TEMPLATES = [
    "PO {{ OrderNo }}: {{ Description or '(no description)' }}",
    "{{ supplier.Name or '(unknown)' }} / {{ line.CodeA }} / {{ lines[1] }}",
    "{{ Description|upper }}-{{ Description|trim }}-{{ OrderNo|date }}",
    "{% set n = 2 %}{{ n }}{% for i in range(n) %}[{{ i }}]{% endfor %}",  # a local, a global, a loop
    "{{ Amount }} {{ Amount is none }}",
    "keep\ntrailing\n",
    # the fast path's shapes (fields, attributes, constants, "or"), and what it leaves to Jinja
    "{{ supplier.Name.First }} {{ line.CodeB or supplier.Name or 'none' }}",
    "{{ Missing or 'x' }}",
    "{{ none }}|{{ 1.0 }}|{{ true }}|{{ 'a' }}|{{ Amount or 0 }}",
    "{{ self }}",
    "line\r\nbreaks {{ OrderNo }}\r\n",
]
EXPRESSIONS = ["OrderNo", "supplier.Name", "Amount", "lines[0]", "Missing", "range(2)|list", "Description or 'x'",
               "supplier.Name.First", "line.CodeA or OrderNo", "Missing or 'x'", "'fixed'", "supplier", "line"]

field_values = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(allow_nan=False), st.booleans())
records = st.fixed_dictionaries(
    {"OrderNo": field_values, "Description": field_values, "Amount": field_values},
    optional={
        "supplier": st.one_of(st.none(), st.dictionaries(st.just("Name"), field_values)),
        "line": st.one_of(
            st.none(), st.text(max_size=5), st.dictionaries(st.sampled_from(["CodeA", "CodeB"]), field_values)
        ),
        "lines": st.lists(field_values, max_size=3),
    },
)


def _jinja(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except Exception as exc:  # the same error type (message aside) is part of what must not change
        return "error", type(exc).__name__


def _ours(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except MappingError as exc:
        return "error", {"cannot render": "UndefinedError", "was refused": "SecurityError"}.get(
            next((k for k in ("cannot render", "was refused") if k in str(exc)), ""), "MappingError"
        )
    except Exception as exc:
        return "error", type(exc).__name__


@given(record=records)
def test_a_shared_namespace_renders_what_jinja_renders(record: dict[str, Any]) -> None:
    shared = namespace(record)
    for source in TEMPLATES:
        expected = _jinja(lambda source=source: _compiled(source).render(record))
        assert _ours(lambda source=source: render(source, shared)) == expected
        assert _ours(lambda source=source: render(source, record)) == expected
    for source in EXPRESSIONS:
        expected = _jinja(lambda source=source: _expression(source)(**record))
        assert _ours(lambda source=source: resolve_value(source, shared)) == expected


@given(text=st.text(max_size=40).filter(lambda t: "{" not in t and "\r" not in t))
def test_plain_text_is_what_jinja_would_render(text: str) -> None:
    assert render(text, {}) == _compiled(text).render()


def test_a_template_cannot_change_the_namespace_the_next_one_reads() -> None:
    shared = namespace({"OrderNo": "P1"})
    assert render("{% set OrderNo = 'changed' %}{{ OrderNo }}", shared) == "changed"
    assert render("{{ OrderNo }}", shared) == "P1"


def test_a_missing_field_is_still_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="cannot render"):
        render("{{ Nope }}", namespace({"OrderNo": "P1"}))


def test_templates_that_only_print_fields_skip_jinja_and_others_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _fast_template("PO {{ OrderNo }}: {{ supplier.Name or '(none)' }}") is not None
    assert _fast_expression("supplier.Cf_Supplier_Tier") is not None
    for other in ("{{ OrderNo|upper }}", "{{ lines[0] }}", "{% if x %}y{% endif %}", "{{ self }}", "{{ f() }}"):
        assert _fast_template(other) is None, other

    def no_jinja(source: str) -> None:
        raise AssertionError(f"Jinja compiled {source!r}")

    monkeypatch.setattr("ml_connector.template._compiled", no_jinja)
    monkeypatch.setattr("ml_connector.template._expression", no_jinja)
    names = namespace({"OrderNo": "P1", "supplier": None, "line": {"CodeA": 7}})
    assert render("PO {{ OrderNo }}: {{ supplier.Name or '(none)' }} {{ line.CodeA }}", names) == "PO P1: (none) 7"
    assert resolve_value("line.CodeA", names) == 7 and resolve_value("supplier.Tier", names) is None
    with pytest.raises(AssertionError, match="Jinja compiled"):  # a missing field: Jinja tells what is wrong
        render("{{ Nope }}", names)
