"""``compact_json`` writes the JSON value the standard library writes, and refuses what it refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml_connector.jsonbody import compact_json, parse_json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # past 64 bits too: orjson refuses those
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=("Cs",))),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _standard(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


@given(values)
def test_the_same_json_value_as_the_standard_library(value: Any) -> None:
    assert json.loads(compact_json(value)) == json.loads(_standard(value))
    assert json.loads(compact_json(value, finite=True)) == json.loads(_standard(value))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_refused_not_written_as_null(bad: float) -> None:
    # orjson would write null; httpx2's encoding refuses them, and so must this one
    for value in (bad, {"a": None, "n": [1, bad]}, [None, {"x": bad}]):
        with pytest.raises(ValueError):
            compact_json(value)


def test_what_orjson_refuses_is_left_to_the_standard_library() -> None:
    assert compact_json({"n": 2**80, 3: "int key"}) == _standard({"n": 2**80, 3: "int key"})
    with pytest.raises(UnicodeEncodeError):
        compact_json({"s": "\ud800"})  # a lone surrogate: not UTF-8

    @dataclass
    class Thing:
        name: str

    for refused in (datetime(2026, 1, 1, tzinfo=UTC), Thing("x")):
        with pytest.raises(TypeError):
            compact_json({"v": refused})  # json.dumps has no encoding for them; neither has this


def test_plain_values_take_orjson_and_come_out_compact() -> None:
    assert compact_json({"summary": "Süß", "labels": ["a"], "n": 1.5, "x": None}) == (
        '{"summary":"Süß","labels":["a"],"n":1.5,"x":null}'.encode()
    )


@given(values)
def test_parse_json_reads_what_json_loads_reads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(value, indent=1)):
        data = text.encode("utf-8")
        parsed, expected = parse_json(data), json.loads(data)
        assert parsed == expected and json.dumps(parsed) == json.dumps(expected)  # ints stay ints, not floats


@pytest.mark.parametrize(
    "data",
    [b'{"a": NaN}', b"[1e400, -Infinity]", b'"\\ud800"', b"123456789012345678901234567890", b"\xef\xbb\xbf[1]"],
)
def test_what_orjson_would_refuse_or_misread_is_read_by_the_standard_library(data: bytes) -> None:
    assert json.dumps(parse_json(data)) == json.dumps(json.loads(data))
    assert type(parse_json(b"[9223372036854775808]")[0]) is int  # 2**63: past orjson's 64 bits


def test_what_both_refuse_raises_as_json_loads_does() -> None:
    with pytest.raises(ValueError):
        parse_json(b'{"cut": ')
