"""The simulator's OData engine: tokenizer, recursive-descent $filter parser, type checks and evaluation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml_connector.sim.ifs.odata import (
    Bound,
    ODataError,
    compile_filter,
    parse_expand,
    parse_key_predicate,
    parse_orderby,
    parse_select,
    quote_string,
    tokenize,
)
from ml_connector.sim.ifs.schema import KINDS, PROJECTIONS, prop_types
from ml_connector.sim.ifs.store import Desc, encode_component

PROPS = prop_types(KINDS["PurchaseOrder"], PROJECTIONS["PurchaseOrderHandling"])
STATE = "IfsApp.PurchaseOrderHandling.PurchaseOrderState"
UTC = dt.UTC

ROW: dict[str, Any] = {
    "OrderNo": "PO-0001'A",
    "VendorNo": "SUP-0001",
    "OrderDate": dt.date(2025, 3, 1),
    "DateEntered": dt.datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
    "Objstate": "Released",
    "Contract": "S100",
    "Description": "Spare Parts for line 3",
    "TotalAmount": 1250.5,
    "ProjectId": None,
    "Cf_Changed_At": dt.datetime(2025, 3, 2, 12, 0, 0, tzinfo=UTC),
    "Cf_Jira_Status": None,
}


def matches(text: str, row: dict[str, Any] = ROW) -> bool:
    return compile_filter(text, PROPS).predicate(row)


def test_doubled_quote_is_one_quote() -> None:
    tokens = tokenize("OrderNo eq 'PO-0001''A'")
    assert tokens[2].kind == "string" and tokens[2].value == "PO-0001'A"
    assert matches("OrderNo eq 'PO-0001''A'")
    assert not matches("OrderNo eq 'PO-0001'")


def test_literals_are_typed() -> None:
    kinds = [(t.kind, t.value) for t in tokenize("1 2.5 -3 2025-01-31 2025-01-31T10:00:00Z null")][:-1]
    assert kinds[:3] == [("number", 1), ("number", 2.5), ("number", -3)]
    assert kinds[3] == ("date", dt.date(2025, 1, 31))
    assert kinds[4] == ("datetime", dt.datetime(2025, 1, 31, 10, tzinfo=UTC))
    assert kinds[5] == ("ident", "null")
    enum = tokenize(f"{STATE}'Released'")[0]
    assert enum.kind == "enum" and enum.value == (STATE, "Released")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TotalAmount gt 1000", True),
        ("TotalAmount ge 1250.5 and TotalAmount le 1250.5", True),
        ("TotalAmount lt 1000 or OrderNo eq 'x'", False),
        ("not (TotalAmount lt 1000)", True),
        ("not contains(Description,'Spare')", False),
        ("contains(tolower(Description),'spare parts')", True),
        ("startswith(toupper(Description),'SPARE') and endswith(Description,'3')", True),
        ("length(Contract) eq 4 and trim('  a ') eq 'a' and concat(Contract,'x') eq 'S100x'", True),
        (
            "indexof(Description,'Parts') eq 6 and substring(Contract,1) eq '100' and substring(Contract,0,2) eq 'S1'",
            True,
        ),
        ("year(OrderDate) eq 2025 and month(Cf_Changed_At) eq 3 and day(DateEntered) eq 1", True),
        ("OrderDate eq 2025-03-01", True),
        ("OrderDate gt 2025-03-01", False),
        ("Cf_Changed_At ge 2025-03-02T12:00:00Z", True),
        ("Cf_Changed_At gt 2025-03-02T12:00:00Z", False),
        ("Cf_Changed_At eq 2025-03-02T14:00:00+02:00", True),
        ("Cf_Changed_At lt 2025-03-02T12:00:00.001Z", True),
        (f"Objstate eq {STATE}'Released'", True),
        (f"Objstate ne {STATE}'Released'", False),
        (f"{STATE}'Planned' ne Objstate", True),
        ("ProjectId eq null", True),
        ("ProjectId ne null", False),
        ("ProjectId gt 'A'", False),  # comparing null is false
        ("not (ProjectId eq 'P1')", True),
        ("contains(ProjectId,'P')", False),
        ("((OrderNo eq 'PO-0001''A'))", True),
        ("TotalAmount gt 1000 and (Contract eq 'S200' or Contract eq 'S100')", True),
        ("TotalAmount gt 1000 and Contract eq 'S200' or Contract eq 'S100'", True),  # and binds tighter
        ("Contract eq 'S100' or TotalAmount gt 1000 and Contract eq 'S200'", True),
        ("Contract eq 's100'", False),  # string compare is case-sensitive
        ("VendorNo lt Contract", False),  # property against property
    ],
)
def test_evaluation(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "Objstate eq 'Released'",
        "'Released' eq Objstate",
        "Objstate eq IfsApp.WrongHandling.PurchaseOrderState'Released'",
        f"Objstate eq {STATE}'Shipped'",
        "OrderDate eq 2025-03-01T00:00:00Z",
        "Cf_Changed_At eq 2025-03-02",
        "TotalAmount eq '1'",
        "OrderNo eq 1",
        "Unknown eq 1",
        "OrderNo eq 'a' eq 'b'",
        "OrderNo eq",
        "eq 'a'",
        "(OrderNo eq 'a'",
        "OrderNo eq 'a')",
        "OrderNo eq 'unterminated",
        "Description",
        "tolower(Description)",
        "contains(Description)",
        "contains(TotalAmount,'1')",
        "contains(Objstate,'Rel')",
        "OrderDate eq 2025-02-30",
        "OrderNo eq 'a' # comment",
        "",
    ],
)
def test_refusals_are_400(text: str) -> None:
    with pytest.raises(ODataError) as caught:
        compile_filter(text, PROPS)
    assert caught.value.status == 400


@pytest.mark.parametrize("text", ["TotalAmount add 1 gt 2", "OrderNo in ('a','b')", "matchesPattern(OrderNo,'x')"])
def test_unsupported_is_501(text: str) -> None:
    with pytest.raises(ODataError) as caught:
        compile_filter(text, PROPS)
    assert caught.value.status == 501


def test_unqualified_enum_message_names_the_qualified_form() -> None:
    with pytest.raises(ODataError, match=rf"{STATE}'Released'"):
        compile_filter("Objstate eq 'Released'", PROPS)


def test_bounds_come_from_top_level_conjuncts_only() -> None:
    stamp = dt.datetime(2025, 1, 1, tzinfo=UTC)
    compiled = compile_filter(
        "Cf_Changed_At ge 2025-01-01T00:00:00Z and 'X' gt OrderNo and (TotalAmount gt 1 or TotalAmount lt 0)", PROPS
    )
    assert compiled.bounds == (Bound("Cf_Changed_At", "ge", stamp), Bound("OrderNo", "lt", "X"))
    assert compile_filter("OrderNo eq 'a' or OrderNo eq 'b'", PROPS).bounds == (
        Bound("OrderNo", "in", frozenset({"a", "b"})),
    )
    assert compile_filter("OrderNo eq 'a' or VendorNo eq 'b'", PROPS).bounds == ()
    assert compile_filter("OrderNo eq 'a' or (OrderNo eq 'b' and VendorNo eq 'c')", PROPS).bounds == ()
    assert compile_filter(f"Objstate eq {STATE}'Released'", PROPS).bounds == ()
    assert compile_filter("OrderNo ne 'a'", PROPS).bounds == ()


def test_orderby_select_expand_parsing() -> None:
    assert parse_orderby("Cf_Changed_At desc, OrderNo", PROPS) == [("Cf_Changed_At", True), ("OrderNo", False)]
    assert parse_orderby("OrderNo asc", PROPS) == [("OrderNo", False)]
    for bad in ("OrderNo up", "Nope", "OrderNo desc extra", ""):
        with pytest.raises(ODataError):
            parse_orderby(bad, PROPS)
    assert parse_select("OrderNo, Objstate,OrderNo", PROPS) == ["OrderNo", "Objstate"]
    assert parse_select("*", PROPS) is None
    items = parse_expand("VendorNoRef($select=Name,Country),ProjectRef")
    assert [(i.nav, i.select) for i in items] == [("VendorNoRef", "Name,Country"), ("ProjectRef", None)]
    with pytest.raises(ODataError) as caught:
        parse_expand("VendorNoRef($filter=Name eq 'x')")
    assert caught.value.status == 501


def test_key_predicates() -> None:
    keys = {k: PROPS[k] for k in ("OrderNo",)}
    assert parse_key_predicate("OrderNo='A''B'", keys) == {"OrderNo": "A'B"}
    assert parse_key_predicate("'A/B'", keys) == {"OrderNo": "A/B"}
    lines = prop_types(KINDS["PurchaseOrderLine"], PROJECTIONS["PurchaseOrderHandling"])
    three = {k: lines[k] for k in ("OrderNo", "LineNo", "ReleaseNo")}
    assert parse_key_predicate("ReleaseNo='1',OrderNo='X',LineNo='2'", three) == {
        "ReleaseNo": "1",
        "OrderNo": "X",
        "LineNo": "2",
    }
    wo = prop_types(KINDS["WorkOrder"], PROJECTIONS["ActiveWorkOrdersHandling"])
    assert parse_key_predicate("WoNo=12", {"WoNo": wo["WoNo"]}) == {"WoNo": 12}
    for bad, spec in [
        ("WoNo='12'", {"WoNo": wo["WoNo"]}),
        ("OrderNo=1", keys),
        ("OrderNo='X',", keys),
        ("Other='X'", keys),
        ("OrderNo='X',LineNo='1'", three),
        ("OrderNo='X' LineNo='1'", three),
    ]:
        with pytest.raises(ODataError):
            parse_key_predicate(bad, spec)


def test_sort_encoding_orders_nulls_first_and_reverses_desc() -> None:
    values = ["b", None, "a", "c"]
    asc = sorted(values, key=lambda v: encode_component(v, False))
    desc = sorted(values, key=lambda v: encode_component(v, True))
    assert asc == [None, "a", "b", "c"]
    assert desc == ["c", "b", "a", None]
    assert Desc((1, 2)) < Desc((1, 1)) and Desc((1, 1)) == Desc((1, 1))


# A string value (key or filter operand) survives quoting, tokenizing and evaluation, whatever it contains.
text_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(value=text_values)
def test_any_string_round_trips_through_the_tokenizer(value: str) -> None:
    tokens = tokenize(f"OrderNo eq {quote_string(value)}")
    assert [t.kind for t in tokens] == ["ident", "ident", "string", "end"]
    assert tokens[2].value == value


@given(value=text_values, other=text_values)
def test_any_string_round_trips_through_filter_evaluation(value: str, other: str) -> None:
    literal = quote_string(value)
    assert matches(f"OrderNo eq {literal}", {**ROW, "OrderNo": value})
    assert matches(f"Description eq {literal} or OrderNo ne {literal}", {**ROW, "Description": value})
    assert matches(f"OrderNo eq {literal}", {**ROW, "OrderNo": other}) is (value == other)
    assert matches(f"contains(OrderNo,{literal})", {**ROW, "OrderNo": other + value + other})
    assert matches(f"startswith(OrderNo,{literal})", {**ROW, "OrderNo": value + other})


@given(value=text_values)
def test_any_string_round_trips_as_a_key_predicate(value: str) -> None:
    keys = {"OrderNo": PROPS["OrderNo"]}
    assert parse_key_predicate(f"OrderNo={quote_string(value)}", keys) == {"OrderNo": value}
    assert parse_key_predicate(quote_string(value), keys) == {"OrderNo": value}


@given(
    keys=st.lists(st.sampled_from(["PO-0001'A", "PO-0002", "SUP-0001", "S100", ""]), min_size=1, max_size=8),
    prop=st.sampled_from(["OrderNo", "VendorNo", "Contract"]),
)
def test_a_key_list_answers_as_the_chain_of_its_terms(keys: list[str], prop: str) -> None:
    """``P eq 'a' or P eq 'b' ...`` is one set lookup (sim CPU); it must answer exactly as its terms one by one."""
    text = " or ".join(f"{prop} eq {quote_string(k)}" for k in keys)
    mixed = f"{text} or VendorNo eq 'SUP-0001'" if prop != "VendorNo" else f"{text} or OrderNo eq 'x'"
    for row in (ROW, {**ROW, prop: None}, {**ROW, prop: keys[-1]}):
        assert compile_filter(text, PROPS).predicate(row) is (row.get(prop) in keys)
        by_term = any(compile_filter(term, PROPS).predicate(row) for term in mixed.split(" or "))
        assert compile_filter(mixed, PROPS).predicate(row) is by_term  # two properties: the general path


def test_a_key_list_still_refuses_a_term_of_the_wrong_type() -> None:
    with pytest.raises(ODataError, match="not compatible"):
        compile_filter("OrderNo eq 'PO-1' or OrderNo eq 5", PROPS)
    assert compile_filter("TotalAmount eq 1250.5 or TotalAmount eq 3", PROPS).predicate(ROW) is True  # numbers: chain
