"""Any value survives literal escaping and URL encoding unchanged and cannot change a filter's shape."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.ifs.odata import F, encode_query, entity_path, key_match, literal

NASTY = st.text(alphabet=st.sampled_from(list("'\"%&#$/?+= ()\\,;:@!*aZ0é€😀\t")), max_size=20) | st.text(max_size=30)


def read_string_literal(text: str, start: int) -> tuple[str, int]:
    """Independent reader of an OData string literal at ``start``; returns (value, index after it)."""
    assert text[start] == "'"
    out, i = [], start + 1
    while True:
        j = text.index("'", i)
        out.append(text[i:j])
        if j + 1 < len(text) and text[j + 1] == "'":
            out.append("'")
            i = j + 2
        else:
            return "".join(out), j + 1


@given(NASTY)
def test_string_literal_roundtrips_and_is_one_token(value: str) -> None:
    lit = literal(value)
    parsed, end = read_string_literal(lit, 0)
    assert parsed == value
    assert end == len(lit)


@given(NASTY)
def test_eq_filter_has_exactly_three_tokens(value: str) -> None:
    text = str(F("OrderNo") == value)
    assert text.startswith("OrderNo eq ")
    parsed, end = read_string_literal(text, len("OrderNo eq "))
    assert parsed == value and end == len(text)


@given(NASTY, st.integers(min_value=-(2**53), max_value=2**53))
def test_composite_key_path_roundtrips(order_no: str, line: int) -> None:
    path = entity_path("PurchaseOrderHandling.svc/PurchaseOrderLinePartSet", {"OrderNo": order_no, "LineNo": line})
    tail = path.split("PurchaseOrderLinePartSet", 1)[1]
    assert not re.search(r"[/#?&\s+]", tail)  # nothing that ends a segment or starts a query survives unencoded
    decoded = unquote(tail)
    assert decoded.startswith("(OrderNo=") and decoded.endswith(f",LineNo={line})")
    parsed, end = read_string_literal(decoded, len("(OrderNo="))
    assert parsed == order_no and decoded[end:] == f",LineNo={line})"


@given(NASTY)
def test_query_value_cannot_add_options(value: str) -> None:
    q = encode_query({"$filter": str(key_match({"OrderNo": value})), "$top": 1})
    parts = q.split("&")
    assert [p.split("=", 1)[0] for p in parts] == ["$filter", "$top"]
    assert unquote(parts[0].split("=", 1)[1]) == f"OrderNo eq {literal(value)}"


@settings(max_examples=200)
@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.timezones()))
def test_datetime_literal_is_the_same_instant_in_utc(value: dt.datetime) -> None:
    lit = literal(value)
    assert lit.endswith("Z")
    back = dt.datetime.fromisoformat(lit.replace("Z", "+00:00"))
    assert back == value.astimezone(dt.UTC)  # gap/fold local times never compare equal across zones
