"""The simulator's record store: every way a scan can be narrowed gives the rows a full walk in order would."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.sim.ifs.odata import Bound
from ml_connector.sim.ifs.schema import KINDS
from ml_connector.sim.ifs.store import KindStore, OrderSpec, Record

LINES = KINDS["PurchaseOrderLine"]
AT = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
_OPS = {
    "eq": lambda a, b: a == b,
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
    "in": lambda a, b: a in b,
}


def _store(orders: int, lines: int) -> KindStore:
    store = KindStore(LINES)
    records = []
    for n in range(orders):
        for line in range(1, lines + 1):
            values = {
                "OrderNo": f"PO-{n:03d}",
                "LineNo": str(line),
                "ReleaseNo": "1",
                "PartNo": f"P{(n * 7 + line) % 5}",
            }
            key = store.key_of(values)
            records.append(Record(LINES, key, values, f"id{n}-{line}", AT))
    store.load(records)
    return store


def _walked(store: KindStore, order: OrderSpec, after: tuple[Any, ...] | None, bounds: tuple[Bound, ...]) -> list[Any]:
    """What a scan must yield of the rows the bounds admit: every row in order, after ``after``, one by one."""
    entries = sorted((store.sort_key(order, r.values, r.key), r) for r in store.records.values())
    return [r.key for sort_key, r in entries if (after is None or sort_key > after) and _admitted(r.values, bounds)]


def _admitted(values: dict[str, Any], bounds: tuple[Bound, ...]) -> bool:
    return all(_OPS[b.op](values[b.prop], b.value) for b in bounds)


_orders = st.sampled_from(
    [
        (("LineNo", False), ("ReleaseNo", False), ("OrderNo", False)),  # lines ordered by line number: no index on it
        (("OrderNo", True), ("LineNo", False), ("ReleaseNo", False)),
        (("PartNo", True), ("OrderNo", False), ("LineNo", False), ("ReleaseNo", False)),
        (("OrderNo", False), ("LineNo", False), ("ReleaseNo", False)),
    ]
)
_order_no = st.integers(0, 40).map(lambda n: f"PO-{n:03d}")
_compared = st.builds(
    Bound,
    st.sampled_from(["OrderNo", "PartNo"]),
    st.sampled_from(sorted(set(_OPS) - {"in"})),
    _order_no | st.sampled_from(["P1", "P3"]),
)
_key_lists = st.builds(
    Bound,
    st.sampled_from(["OrderNo", "PartNo"]),
    st.just("in"),
    st.frozensets(_order_no | st.sampled_from(["P1", "P3"]), min_size=1, max_size=6),
)
_bounds = st.lists(_compared | _key_lists, max_size=2)


@settings(max_examples=150, deadline=None)
@given(order=_orders, bounds=_bounds, after_at=st.none() | st.integers(0, 119))
def test_a_narrowed_scan_yields_what_a_full_walk_would(
    order: OrderSpec, bounds: list[Bound], after_at: int | None
) -> None:
    store = _store(40, 3)
    every = sorted(store.sort_key(order, r.values, r.key) for r in store.records.values())
    after = None if after_at is None else every[after_at]
    scanned = [
        r.key for r in store.scan(order, after=after, bounds=tuple(bounds)) if _admitted(r.values, tuple(bounds))
    ]
    assert scanned == _walked(store, order, after, tuple(bounds))


def test_lines_of_a_few_orders_are_read_through_the_key_not_by_walking_every_line() -> None:
    store = _store(200, 3)
    order = (("LineNo", False), ("ReleaseNo", False), ("OrderNo", False))
    few = (Bound("OrderNo", "ge", "PO-010"), Bound("OrderNo", "le", "PO-014"))
    assert len(list(store.scan(order, after=None, bounds=few))) == 15  # the 5 orders' lines, not all 600
    most = (Bound("OrderNo", "ge", "PO-010"),)
    assert len(list(store.scan(order, after=None, bounds=most))) == 600  # most of the set: walked in order


def test_a_key_list_reads_only_the_listed_orders_lines_in_any_order() -> None:
    store = _store(200, 3)
    listed = (Bound("OrderNo", "in", frozenset({"PO-003", "PO-150", "PO-077"})),)
    by_key: OrderSpec = (("OrderNo", False), ("LineNo", False), ("ReleaseNo", False))
    for order in [by_key, (("LineNo", True), ("OrderNo", False))]:
        rows = list(store.scan(order, after=None, bounds=listed))
        assert len(rows) == 9  # looked up in the key index: their 9 lines, not a walk from PO-003 to PO-150
        assert [r.key for r in rows] == _walked(store, order, None, listed)
