"""Properties of the pure mapping core: identity labels and templates, for any IFS key or field text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.mapping import identity_label, render

keys = st.text(min_size=1, max_size=300)


@given(flow=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True), key=keys)
@settings(max_examples=300)
def test_identity_label_is_a_valid_jira_label(flow: str, key: str) -> None:
    label = identity_label(flow, key)
    assert label and len(label) <= 255
    assert not any(c.isspace() for c in label)
    assert label.startswith(f"mlc-{flow}-")


@given(a=keys, b=keys)
@settings(max_examples=300)
def test_distinct_keys_get_distinct_labels(a: str, b: str) -> None:
    if a != b:
        assert identity_label("po", a) != identity_label("po", b)


@given(value=st.text(max_size=200))
def test_templates_insert_field_text_verbatim_and_never_evaluate_it(value: str) -> None:
    # Field values are data: braces, pipes and paths inside them are never interpreted.
    assert render("[{Description}]", {"Description": value}) == f"[{value}]"
    assert render("{Description|or:none}", {"Description": value}) == (value or "none")
