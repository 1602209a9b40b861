"""Properties of templates: field values are data, for any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.template import check_template, convert_old, render


@given(value=st.text(max_size=200))
def test_templates_insert_field_text_verbatim_and_never_evaluate_it(value: str) -> None:
    # Braces, pipes and Jinja syntax inside a value are never interpreted.
    assert render("[{{ Description }}]", {"Description": value}) == f"[{value}]"
    assert render("{{ Description or 'none' }}", {"Description": value}) == (value or "none")


fallbacks = st.text(max_size=40).filter(lambda t: not set(t) & set("|{}") and t == t.strip())


@given(fallback=fallbacks, value=st.one_of(st.none(), st.just(""), st.text(max_size=40)))
def test_a_converted_or_fallback_prints_what_the_old_one_did(fallback: str, value: str | None) -> None:
    new = convert_old(f"{{Description|or:{fallback}}}")
    check_template(new, path="x", fields=["Description"])
    assert render(new, {"Description": value}) == (value or fallback)
    upper = convert_old(f"{{Description|or:{fallback}|upper}}")
    assert render(upper, {"Description": value}) == (value or fallback).upper()
