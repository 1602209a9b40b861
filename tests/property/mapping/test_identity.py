"""Properties of the pure mapping core: identity labels, for any IFS key."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.mapping import identity_label

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
