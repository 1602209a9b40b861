"""OData literals, filter expressions, keys, order and keyset conditions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import unquote

import pytest

from ml_connector.ifs.odata import (
    EntitySetRef,
    EnumLiteral,
    F,
    OrderKey,
    Raw,
    WallTime,
    and_,
    encode_query,
    entity_path,
    key_predicate,
    keyset_after,
    literal,
    parse_orderby,
    select_list,
    total_order,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PO-1", "'PO-1'"),
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        ("", "''"),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (1e-7, "0.0000001"),
        (1e20, "100000000000000000000"),
        (Decimal("12.50"), "12.50"),
        (dt.date(2025, 1, 31), "2025-01-31"),
        (dt.datetime(2025, 1, 31, 10, 0, tzinfo=dt.UTC), "2025-01-31T10:00:00Z"),
        (
            dt.datetime(2025, 1, 31, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=1, minutes=30))),
            "2025-01-31T10:00:00Z",
        ),
        (dt.datetime(2025, 1, 31, 10, 0, 0, 250000, tzinfo=dt.UTC), "2025-01-31T10:00:00.25Z"),
        (
            EnumLiteral("IfsApp.PurchaseOrderHandling.PurchaseOrderState", "Released"),
            "IfsApp.PurchaseOrderHandling.PurchaseOrderState'Released'",
        ),
        (EnumLiteral("IfsApp.X.Y", "it's"), "IfsApp.X.Y'it''s'"),
        (WallTime(dt.datetime(2025, 11, 2, 1, 30)), "2025-11-02T01:30:00Z"),  # the server's wall time, as IFS shows it
    ],
)
def test_literal_forms(value: object, expected: str) -> None:
    assert literal(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), dt.datetime(2025, 1, 1), object()])
def test_literal_refuses_values_without_a_safe_form(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        literal(bad)  # type: ignore[arg-type]


def test_wall_time_is_naive() -> None:
    with pytest.raises(ValueError):
        WallTime(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))


def test_enum_type_must_be_qualified() -> None:
    with pytest.raises(ValueError):
        EnumLiteral("PurchaseOrderState", "Released")
    with pytest.raises(ValueError):
        EnumLiteral("IfsApp.X.Y' or 1 eq 1 or 'a", "x")


@pytest.mark.parametrize("name", ["", "a b", "A eq 'x'", "A)", "1A", "A/", "A,B", "$filter"])
def test_field_names_are_validated_not_quoted(name: str) -> None:
    with pytest.raises(ValueError):
        F(name)


def test_expressions_parenthesise_every_operand() -> None:
    expr = (F("OrderNo") == "a'b") & ((F("TotalAmount") > 100) | ~F("Description").contains("X"))
    assert expr.render() == "(OrderNo eq 'a''b') and ((TotalAmount gt 100) or (not (contains(Description,'X'))))"
    assert str(F("Cf_Jira_Key") != None) == "Cf_Jira_Key ne null"  # noqa: E711
    assert str(F("Description").startswith("Ab", lower=True)) == "startswith(tolower(Description),'ab')"
    assert str(F("WoNo").in_([1, 2])) == "(WoNo eq 1) or (WoNo eq 2)"


def test_raw_operator_filter_cannot_escape_its_parentheses() -> None:
    combined = and_("VendorNo eq 'V1' or VendorNo eq 'V2'", F("Objstate") == EnumLiteral("IfsApp.P.S", "Released"))
    assert str(combined) == "(VendorNo eq 'V1' or VendorNo eq 'V2') and (Objstate eq IfsApp.P.S'Released')"
    assert and_(None, "  ") is None
    assert str(and_(Raw("A eq 1"), None)) == "A eq 1"


def test_key_predicate_and_path_encoding() -> None:
    assert key_predicate({"OrderNo": "PO-1"}) == "(OrderNo='PO-1')"
    assert key_predicate({"WoNo": 12}) == "(WoNo=12)"
    assert key_predicate({"OrderNo": "X", "LineNo": "1", "ReleaseNo": "1"}) == "(OrderNo='X',LineNo='1',ReleaseNo='1')"
    nasty = "A/B#C%D&E?F G'H+é"
    path = entity_path("PurchaseOrderHandling.svc/PurchaseOrderSet", {"OrderNo": nasty})
    tail = path.split("PurchaseOrderSet", 1)[1]
    for ch in "/#?& +é":
        assert ch not in tail
    assert unquote(tail) == "(OrderNo='A/B#C%D&E?F G''H+é')"
    with pytest.raises(TypeError):
        key_predicate({"WoNo": True})
    with pytest.raises(ValueError):
        key_predicate({})


def test_entity_path_suffixes() -> None:
    assert (
        entity_path(
            "PurchaseOrderHandling.svc/PurchaseOrderSet",
            {"OrderNo": "X"},
            "IfsApp.PurchaseOrderHandling.PurchaseOrder_Release",
        )
        == "PurchaseOrderHandling.svc/PurchaseOrderSet(OrderNo='X')/IfsApp.PurchaseOrderHandling.PurchaseOrder_Release"
    )
    assert entity_path("P.svc/S", None, "$count") == "P.svc/S/$count"
    with pytest.raises(ValueError):
        entity_path("P.svc/S", None, "../x")
    with pytest.raises(ValueError):
        EntitySetRef.parse("PurchaseOrderSet")


def test_encode_query_keeps_dollar_and_encodes_plus_and_ampersand() -> None:
    q = encode_query({"$filter": "A eq 'x+y&z=1#'", "$top": 5, "$select": None, "$orderby": "A,B desc"})
    assert q == "$filter=A%20eq%20'x%2By%26z%3D1%23'&$top=5&$orderby=A,B%20desc"
    with pytest.raises(ValueError):
        encode_query({"a&b": "1"})


def test_select_and_orderby_parsing() -> None:
    assert select_list(["OrderNo", "VendorNo"]) == "OrderNo,VendorNo"
    assert select_list("OrderNo, VendorNo") == "OrderNo,VendorNo"
    with pytest.raises(ValueError):
        select_list(["OrderNo&$top=1"])
    assert parse_orderby("Cf_Changed_At desc, OrderNo") == [OrderKey("Cf_Changed_At", True), OrderKey("OrderNo")]
    with pytest.raises(ValueError):
        parse_orderby("A sideways")
    assert total_order([OrderKey("Cf_Changed_At")], ["OrderNo"]) == [OrderKey("Cf_Changed_At"), OrderKey("OrderNo")]
    assert total_order([OrderKey("OrderNo", True)], ["OrderNo"]) == [OrderKey("OrderNo", True)]


def test_keyset_single_and_compound() -> None:
    assert str(keyset_after([OrderKey("OrderNo")], ["PO-'9"])) == "OrderNo gt 'PO-''9'"
    ts = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    cond = keyset_after([OrderKey("Cf_Changed_At"), OrderKey("OrderNo")], [ts, "PO-5"])
    assert str(cond) == (
        "(Cf_Changed_At gt 2025-03-01T12:00:00Z) or ((Cf_Changed_At eq 2025-03-01T12:00:00Z) and (OrderNo gt 'PO-5'))"
    )
    desc = keyset_after([OrderKey("TotalAmount", True), OrderKey("WoNo")], [10, 3])
    assert str(desc) == "((TotalAmount lt 10) or (TotalAmount eq null)) or ((TotalAmount eq 10) and (WoNo gt 3))"
    nulls = keyset_after([OrderKey("Cf_Changed_At"), OrderKey("OrderNo")], [None, "A"])
    assert str(nulls) == "(Cf_Changed_At ne null) or ((Cf_Changed_At eq null) and (OrderNo gt 'A'))"


def _evaluate_keyset_reference(order: list[OrderKey], last: tuple[object, ...], row: tuple[object, ...]) -> bool:
    """Reference: Python's tuple order with nulls first ascending / last descending."""

    def sort_key(values: tuple[object, ...]) -> tuple[object, ...]:
        out: list[object] = []
        for ok, v in zip(order, values, strict=True):
            if ok.descending:
                out.append((1, 0) if v is None else (0, -v))  # type: ignore[operator]
            else:
                out.append((0, 0) if v is None else (1, v))
        return tuple(out)

    return sort_key(row) > sort_key(last)


def _evaluate(expr_text: str, names: list[str], row: tuple[object, ...]) -> bool:
    """Evaluate the rendered condition with Python (OData null comparisons are false except eq/ne null)."""
    py = expr_text
    for op, sym in ((" gt ", " > "), (" lt ", " < "), (" eq ", " == "), (" ne ", " != ")):
        py = py.replace(op, sym)
    env = dict(zip(names, row, strict=True))

    class N:  # null-aware wrapper
        def __init__(self, v: object) -> None:
            self.v = v

        def _cmp(self, other: object, f: object) -> bool:
            if other is None:
                return False
            return self.v is not None and f(self.v, other)  # type: ignore[operator]

        def __gt__(self, o: object) -> bool:
            return self._cmp(o, lambda a, b: a > b)

        def __lt__(self, o: object) -> bool:
            return self._cmp(o, lambda a, b: a < b)

        def __eq__(self, o: object) -> bool:  # type: ignore[override]
            return self.v is None if o is None else self.v == o

        def __ne__(self, o: object) -> bool:  # type: ignore[override]
            return not self.__eq__(o)

    return bool(eval(py.replace("null", "None"), {}, {k: N(v) for k, v in env.items()}))


@pytest.mark.parametrize("desc", [(False, False), (True, False), (False, True), (True, True)])
def test_keyset_matches_reference_order_on_small_grid(desc: tuple[bool, bool]) -> None:
    order = [OrderKey("a", desc[0]), OrderKey("b", desc[1])]
    domain = [None, 1, 2, 3]
    rows = [(x, y) for x in domain for y in [1, 2, 3]]
    for last in rows:
        cond = keyset_after(order, list(last)).render()  # type: ignore[arg-type]
        for row in rows:
            assert _evaluate(cond, ["a", "b"], row) == _evaluate_keyset_reference(order, last, row), (cond, last, row)
