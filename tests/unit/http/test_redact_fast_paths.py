"""Redaction's shortcuts (the pre-check on text, unchanged containers given back as they are) change nothing."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.http.redact import REDACTED, _any_may_hold_secret, may_hold_secret, redact, redact_text

patterns = importlib.import_module("ml_connector.http.redact")._TEXT_PATTERNS

# Text built from the pieces the patterns look for, in any case, beside ordinary and look-alike characters.
pieces = st.sampled_from(
    [
        "bearer ",
        "Basic ",
        "BEARER",
        "ba\u017fic ",
        "bearer",
        "token=",
        "code=x",
        '"secret": "v"',
        '"',
        "=",
        "eyJ",
        "eyJabcde.fghij.k",
        "EYJ",
        "abcdefgh",
        " ",
        "\n",
        "\u0131",
        "\u212a",
        "é",
        "x",
        "api_token",
        ":",
        "password=",
        "CLIENT_SECRET",
        "Code",
        "ORDER_NO=PO-1^",
        '"token"',
        '"x": "y"',
    ]
)
texts = st.one_of(st.text(max_size=60), st.lists(pieces, max_size=12).map("".join))


@given(text=texts)
def test_text_the_pre_check_passes_over_matches_no_pattern(text: str) -> None:
    if not may_hold_secret(text):
        assert all(p.search(text) is None for p in patterns)
        assert redact_text(text) is text


def _reference(value: Any) -> Any:
    """What redaction means, written plainly: a copy with sensitive keys and secret-looking text replaced."""
    if isinstance(value, dict):
        sensitive = importlib.import_module("ml_connector.http.redact")._SENSITIVE_KEYS
        return {
            k: REDACTED if isinstance(k, str) and sensitive.search(k) and v not in (None, "") else _reference(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_reference(v) for v in value]
    if isinstance(value, str):
        for pattern in patterns:
            value = pattern.sub(importlib.import_module("ml_connector.http.redact")._sub_text, value)
        return value
    return value


keys = st.one_of(
    st.sampled_from(["summary", "password", "api_token", "Authorization", "labels", "x"]), st.text(max_size=3)
)


class Shared(dict[Any, Any]):
    """A dict subclass, as the store's SafeJson drafts are: the same shortcuts must hold for it."""


trees = st.recursive(
    st.one_of(st.none(), st.integers(), st.just(""), texts),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4).map(Shared),
    ),
    max_leaves=20,
)


@given(tree=trees)
def test_redact_gives_what_redaction_means_and_never_changes_its_input(tree: Any) -> None:
    before = copy.deepcopy(tree)
    result = redact(tree)
    assert json.dumps(result) == json.dumps(_reference(before))
    assert json.dumps(tree) == json.dumps(before)
    if isinstance(tree, dict | list) and result == tree:  # (a tuple inside is no match: it comes back a list)
        assert result is tree  # nothing to redact: no copy


@given(texts=st.lists(texts, max_size=6))
def test_the_one_check_for_many_texts_is_the_check_of_each(texts: list[str]) -> None:
    # What the one check per container relies on. (Joined by NUL alone, "a=b" and "token" would make a trigger that
    # neither holds: that part is checked text by text.)
    assert _any_may_hold_secret(texts) == any(may_hold_secret(t) for t in texts)
    assert not _any_may_hold_secret(["=", "api_token"])


def test_a_changed_leaf_makes_a_new_container_and_leaves_the_old_one_alone() -> None:
    draft = {"summary": "ok", "custom_fields": {"Note": "Bearer abcdefghijk"}, "labels": ["a"]}
    result = redact(draft)
    assert result is not draft and result["custom_fields"] is not draft["custom_fields"]
    assert result["labels"] is draft["labels"]
    assert result["custom_fields"] == {"Note": f"Bearer {REDACTED}"}
    assert draft["custom_fields"] == {"Note": "Bearer abcdefghijk"}
    assert redact({"password": "p"}) == {"password": REDACTED}
    assert redact(("a",)) == ["a"]  # a tuple still comes back as a list
