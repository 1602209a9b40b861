"""Properties of templates: field values are data, for any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.template import render


@given(value=st.text(max_size=200))
def test_templates_insert_field_text_verbatim_and_never_evaluate_it(value: str) -> None:
    # Braces, pipes and Jinja syntax inside a value are never interpreted.
    assert render("[{{ Description }}]", {"Description": value}) == f"[{value}]"
    assert render("{{ Description or 'none' }}", {"Description": value}) == (value or "none")
