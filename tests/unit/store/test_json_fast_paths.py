"""``json_safe``'s exact-type fast paths and ``SafeJson`` give what the general rules give, for any value."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.store.db import SafeJson, _generic, json_dumps, json_safe, safe_json


class Kind(enum.Enum):
    A = "a"


class Text(str):
    """A str subclass: must take the general path, not the exact-type one."""


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # NUL, non-ASCII and lone surrogates included
    st.text().map(Text),
    st.datetimes(timezones=st.just(UTC)),
    st.decimals(allow_nan=False),
    st.sampled_from(Kind),
)
keys = st.one_of(st.text(max_size=12), st.integers(), st.sampled_from(Kind), st.text(max_size=4).map(Text))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(st.text(max_size=6), inner, max_size=4).map(OrderedDict),
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=12), values, max_size=5)


def _strict(value: Any) -> str:
    # Equality alone would take 1 == 1.0 == True; the encoded text tells them apart.
    return json.dumps(value, sort_keys=True, allow_nan=False)


@given(value=values)
def test_the_fast_paths_give_what_the_general_rules_give(value: Any) -> None:
    assert _strict(json_safe(value)) == _strict(_generic(value))


@given(value=values)
def test_json_safe_is_idempotent(value: Any) -> None:
    # SafeJson relies on it: a value made safe once is taken as it is.
    once = json_safe(value)
    assert _strict(json_safe(once)) == _strict(once)


@given(value=objects, nested=objects)
def test_a_safe_json_object_encodes_as_the_raw_value_would(value: dict[str, Any], nested: dict[str, Any]) -> None:
    shared = safe_json(nested)
    outer = {**value, "draft": shared}
    for sort_keys in (False, True):
        assert json_dumps(safe_json(value), sort_keys=sort_keys) == json_dumps(value, sort_keys=sort_keys)
        assert json_dumps(outer, sort_keys=sort_keys) == json_dumps({**value, "draft": nested}, sort_keys=sort_keys)
    assert json_safe(shared) is shared


def test_text_that_needs_cleaning_still_gets_it_on_the_fast_path() -> None:
    value = {"nul": "a\x00b", "surrogate": "x\udc80", "ok": "plain", "list": ["\x00"], 1.5: float("inf")}
    assert json_safe(value) == {
        "nul": "a\ufffdb",
        "surrogate": "x\ufffd",
        "ok": "plain",
        "list": ["\ufffd"],
        "1.5": "inf",
    }
    assert type(safe_json(value)) is SafeJson
    assert json.loads(json_dumps({"at": datetime(2026, 1, 1, tzinfo=UTC), "n": Decimal("1.10")})) == {
        "at": "2026-01-01T00:00:00+00:00",
        "n": "1.10",
    }


@given(value=values)
def test_json_dumps_writes_what_json_dumps_of_the_safe_value_writes(value: Any) -> None:
    safe = json_safe(value)
    # sorted (digested audit details): the very text, which the digest is defined on
    assert json_dumps(value, sort_keys=True) == json.dumps(safe, sort_keys=True, allow_nan=False)
    # unsorted (columns read back as values): the same value, in orjson's compact form
    assert json.loads(json_dumps(value)) == json.loads(json.dumps(safe, allow_nan=False))
