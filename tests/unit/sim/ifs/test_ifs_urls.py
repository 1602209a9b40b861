"""URL parsing of the IFS simulator: resource paths with quoted keys, system query options, skiptokens, targets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ml_connector.sim.ifs.odata import ODataError
from ml_connector.sim.ifs.schema import KINDS, PROJECTIONS, prop_types
from ml_connector.sim.ifs.store import Record
from ml_connector.sim.ifs.urls import (
    collapse_keys,
    decode_skiptoken,
    encode_skiptoken,
    endpoint_name,
    int_option,
    resolve,
    split_resource_path,
    system_options,
)

PO_HANDLING = PROJECTIONS["PurchaseOrderHandling"]


def test_keys_keep_slashes_parentheses_and_doubled_quotes() -> None:
    assert split_resource_path("Set(K='a/b(c)''d')/Nav") == [("Set", "K='a/b(c)''d'"), ("Nav", None)]
    assert split_resource_path("Set/") == [("Set", None)]


@pytest.mark.parametrize(
    ("path", "status"),
    [("Set(K='a)", 400), ("Set(K=(1)", 400), ("Set(K='a')x", 400), ("/Set", 404), ("Set//Nav", 404)],
)
def test_malformed_paths_are_refused(path: str, status: int) -> None:
    with pytest.raises(ODataError) as exc:
        split_resource_path(path)
    assert exc.value.status == status


def test_endpoint_names_collapse_keys_but_keep_a_broken_path() -> None:
    assert collapse_keys("Set(K='a)b')/Lines(1,2)") == "Set(...)/Lines(...)"
    assert collapse_keys("Set(K='open") == "Set(K='open"
    base = "/main/ifsapplications/projection/v1"
    assert endpoint_name("GET", f"{base}/P.svc/Set(K='x')") == "GET P.svc/Set(...)"


def test_system_options_refuse_unknown_repeated_and_unimplemented() -> None:
    assert system_options([("$top", "5"), ("custom", "x")]) == {"$top": "5"}
    cases = [([("$bogus", "1")], 400), ([("$top", "1"), ("$top", "2")], 400), ([("$apply", "x")], 501)]
    for params, status in cases:
        with pytest.raises(ODataError) as exc:
            system_options(params)
        assert exc.value.status == status
    with pytest.raises(ODataError):
        int_option({"$top": "-1"}, "$top")
    assert int_option({}, "$top") is None


def test_skiptoken_round_trip_and_refusals() -> None:
    kind = KINDS["PurchaseOrder"]
    order = (("OrderNo", False),)
    record = Record(kind, ("PO-1",), {"OrderNo": "PO-1"}, "objid", datetime(2025, 1, 1, tzinfo=UTC))
    token = encode_skiptoken(order, record)
    assert decode_skiptoken(token, order, kind)[-1] == ("PO-1",)
    with pytest.raises(ODataError, match="does not belong"):
        decode_skiptoken(token, (("OrderNo", True),), kind)
    with pytest.raises(ODataError, match="invalid"):
        decode_skiptoken("not-base64!", order, kind)


def test_resolve_targets() -> None:
    entity = resolve(PO_HANDLING, "PurchaseOrderSet(OrderNo='PO-1')", prop_types)
    assert entity.key == ("PO-1",) and entity.action is None and not entity.count
    lines = resolve(PO_HANDLING, "PurchaseOrderSet(OrderNo='PO-1')/LinePartArray", prop_types)
    assert lines.child is KINDS["PurchaseOrderLine"] and lines.child_key is None
    counted = resolve(PO_HANDLING, "PurchaseOrderSet/$count", prop_types)
    assert counted.count and counted.key is None
    action = f"{PO_HANDLING.namespace}.PurchaseOrder_Release"
    assert resolve(PO_HANDLING, f"PurchaseOrderSet(OrderNo='PO-1')/{action}", prop_types).action == "Release"


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        ("NoSuchSet", 404),
        ("PurchaseOrderSet(OrderNo='PO-1')/$count", 404),
        ("PurchaseOrderSet/LinePartArray", 404),
        ("PurchaseOrderSet(OrderNo='PO-1')/Nope", 404),
        ("PurchaseOrderSet(OrderNo='PO-1')/IfsApp.PurchaseOrderHandling.PurchaseOrder_Explode", 404),
        ("PurchaseOrderLinePartSet(OrderNo='PO-1',LineNo='1',ReleaseNo='1')/OrderRef", 501),
    ],
)
def test_resolve_refusals(tail: str, status: int) -> None:
    with pytest.raises(ODataError) as exc:
        resolve(PO_HANDLING, tail, prop_types)
    assert exc.value.status == status
