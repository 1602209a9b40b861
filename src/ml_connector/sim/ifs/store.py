"""In-memory records of one entity kind, with sorted indexes for ordering and keyset paging.

Every index is a sorted list of tuples ``(encoded sort values..., primary key)``; the primary key makes each entry
unique, so "the row after this key" is a single bisect. Indexes are built on first use of an ``$orderby`` and then
maintained on every write, so a page costs O(log n + rows scanned), never a sort of the whole set.
"""

from __future__ import annotations

import base64
import datetime as dt
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ml_connector.sim.ifs.odata import Bound, Predicate
from ml_connector.sim.ifs.odata_syntax import DATE, DATETIME, DECIMAL, INT, parse_datetime
from ml_connector.sim.ifs.schema import EntityKind

Key = tuple[Any, ...]
OrderSpec = tuple[tuple[str, bool], ...]  # (property, descending)

_MAX_INDEXES = 12


def format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def to_wire(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def as_ieee754(row: Mapping[str, Any], kind: EntityKind) -> dict[str, Any]:
    """A copy of a wire row with its Edm.Decimal values as JSON strings (``IEEE754Compatible=true``).

    Edm.Int64 would be treated alike; no simulated property has that type."""
    out = dict(row)
    for name, prop_kind in kind.props.items():
        value = out.get(name)
        if prop_kind == DECIMAL and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = format_decimal(value)
    return out


def format_decimal(value: float) -> str:
    """A number as a plain decimal string: no exponent, no trailing ``.0`` noise beyond what repr gives."""
    return format(Decimal(repr(value)), "f")


def make_etag(objid: str, objversion: dt.datetime) -> str:
    inner = f'W/"{objid}:{objversion:%Y%m%d%H%M%S}"'
    return 'W/"' + base64.b64encode(inner.encode("ascii")).decode("ascii") + '"'


class Record:
    """One row. ``values`` is replaced, never mutated, so a reader holding a record outside the lock stays
    consistent. The JSON-ready ``wire`` form is rendered on first use and then kept."""

    __slots__ = ("_wire", "key", "kind", "objid", "objversion", "values")

    def __init__(self, kind: EntityKind, key: Key, values: dict[str, Any], objid: str, objversion: dt.datetime) -> None:
        self.kind = kind
        self.key = key
        self.values = values
        self.objid = objid
        self.objversion = objversion
        self._wire: dict[str, Any] | None = None

    @property
    def wire(self) -> dict[str, Any]:
        """The row as IFS serves it: ``@odata.etag``, ``luname``, ``keyref``, ``Objgrants`` and the properties."""
        wire = self._wire
        if wire is None:
            kind = self.kind
            keyref = "".join(f"{db}={v}^" for db, v in zip(kind.db_keys, self.key, strict=True))
            wire = {
                "@odata.etag": make_etag(self.objid, self.objversion),
                "luname": kind.luname,
                "keyref": keyref,
                "Objgrants": None,
            }
            wire.update(self.values)
            for name in kind.temporal:
                value = wire[name]
                if value is not None:
                    wire[name] = to_wire(value)
            self._wire = wire
        return wire

    @property
    def etag(self) -> str:
        return make_etag(self.objid, self.objversion)

    def objversion_text(self) -> str:
        return f"{self.objversion:%Y%m%d%H%M%S}"


class Desc:
    """Reverses the order of the value it wraps (for ``desc`` sort components)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: Desc) -> bool:
        return bool(other.v < self.v)

    def __gt__(self, other: Desc) -> bool:
        return bool(other.v > self.v)

    def __le__(self, other: Desc) -> bool:
        return bool(other.v <= self.v)

    def __ge__(self, other: Desc) -> bool:
        return bool(other.v >= self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Desc) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


_NULL = (0,)


def encode_component(value: Any, desc: bool) -> Any:
    """Nulls sort first ascending and last descending, as OData orders them."""
    enc = _NULL if value is None else (1, value)
    return Desc(enc) if desc else enc


class KindStore:
    def __init__(self, kind: EntityKind) -> None:
        self.kind = kind
        self.records: dict[Key, Record] = {}
        self.version = 0  # bumped on every write; caches key off it
        self.default_order: OrderSpec = tuple((k, False) for k in kind.keys)
        self._indexes: OrderedDict[OrderSpec, list[tuple[Any, ...]]] = OrderedDict()
        self._indexes[self.default_order] = []

    def key_of(self, values: Mapping[str, Any]) -> Key:
        return tuple(values[k] for k in self.kind.keys)

    @staticmethod
    def sort_key(order: OrderSpec, values: Mapping[str, Any], pk: Key) -> tuple[Any, ...]:
        return (*(encode_component(values.get(p), d) for p, d in order), pk)

    def index(self, order: OrderSpec) -> list[tuple[Any, ...]]:
        idx = self._indexes.get(order)
        if idx is None:
            idx = sorted(self.sort_key(order, r.values, r.key) for r in self.records.values())
            self._indexes[order] = idx
            while len(self._indexes) > _MAX_INDEXES:
                victim = next(o for o in self._indexes if o != self.default_order)
                del self._indexes[victim]
        else:
            self._indexes.move_to_end(order)
        return idx

    def load(self, records: list[Record]) -> None:
        """Bulk load (seeding): later duplicates of a key replace earlier ones; indexes are rebuilt."""
        for record in records:
            self.records[record.key] = record
        for order in self._indexes:
            self._indexes[order] = sorted(self.sort_key(order, r.values, r.key) for r in self.records.values())
        self.version += 1

    def insert(self, record: Record) -> None:
        self.records[record.key] = record
        for order, idx in self._indexes.items():
            insort(idx, self.sort_key(order, record.values, record.key))
        self.version += 1

    def replace(self, old: Record, new: Record) -> None:
        self.records[new.key] = new
        for order, idx in self._indexes.items():
            before = self.sort_key(order, old.values, old.key)
            after = self.sort_key(order, new.values, new.key)
            if before != after:
                i = bisect_left(idx, before)
                del idx[i]
                insort(idx, after)
        self.version += 1

    def scan(
        self,
        order: OrderSpec,
        *,
        after: tuple[Any, ...] | None,
        bounds: tuple[Bound, ...],
    ) -> Iterator[Record]:
        """Records in ``order`` strictly after the sort key ``after``, narrowed by bounds on the first sort key (or,
        when that has none, by a narrow range of the first primary key)."""
        first, first_desc = order[0]
        few = self._in_key_list(bounds)
        if few is None and (first_desc or not any(bound.prop == first for bound in bounds)):
            few = self._in_key_range(bounds)
        if few is not None:
            yield from self._sorted_after(few, order, after)
            return
        idx = self.index(order)
        start, stop = (0, len(idx)) if first_desc else _key_range(idx, first, bounds)
        if after is not None:
            start = max(start, bisect_right(idx, after))
        records = self.records
        for i in range(start, stop):
            yield records[idx[i][-1]]

    def _in_key_range(self, bounds: tuple[Bound, ...]) -> list[Record] | None:
        """The records bounds on the first primary key leave (a superset of the matches: the predicate still
        decides), when they are few; else None. A server reads them through its primary key index and sorts them,
        instead of walking the whole set in another order (lines of a range of orders, ordered by line number)."""
        prop = self.kind.keys[0]
        if not any(bound.prop == prop for bound in bounds):
            return None
        idx = self._indexes[self.default_order]
        start, stop = _key_range(idx, prop, bounds)
        if (stop - start) * _NARROW > len(idx):
            return None  # most of the set: walking the index in the requested order costs less than sorting
        return [self.records[entry[-1]] for entry in idx[start:stop]]

    def _in_key_list(self, bounds: tuple[Bound, ...]) -> list[Record] | None:
        """The records of a key list on the first primary key (a superset of the matches: the predicate still
        decides), each key looked up in the primary key index as a server does; None without such a list."""
        prop = self.kind.keys[0]
        lists = [bound.value for bound in bounds if bound.prop == prop and bound.op == "in"]
        if not lists:
            return None
        idx = self._indexes[self.default_order]
        found: list[Record] = []
        for value in sorted(frozenset.intersection(*lists)):
            start, stop = _key_range(idx, prop, (Bound(prop, "eq", value),))
            found += [self.records[entry[-1]] for entry in idx[start:stop]]
        return found

    def _sorted_after(self, records: list[Record], order: OrderSpec, after: tuple[Any, ...] | None) -> Iterator[Record]:
        entries = sorted((self.sort_key(order, r.values, r.key), r.key) for r in records)
        for sort_key, key in entries:
            if after is None or sort_key > after:
                yield self.records[key]


_NARROW = 8  # a key range is read and sorted when it holds at most an eighth of the set


def _key_range(idx: list[tuple[Any, ...]], prop: str, bounds: tuple[Bound, ...]) -> tuple[int, int]:
    """The slice of ``idx`` (an index led by ``prop``, ascending) that the bounds on ``prop`` leave."""
    start, stop = 0, len(idx)
    for bound in bounds:
        if bound.prop != prop:
            continue
        if bound.op == "in":  # a key list: from its least value to its greatest
            start = max(start, bisect_left(idx, (1, min(bound.value)), key=_head))
            stop = min(stop, bisect_right(idx, (1, max(bound.value)), key=_head))
            continue
        value = (1, bound.value)  # as ``encode_component`` writes a non-null value
        if bound.op in ("eq", "ge"):
            start = max(start, bisect_left(idx, value, key=_head))
        elif bound.op == "gt":
            start = max(start, bisect_right(idx, value, key=_head))
        if bound.op in ("eq", "le"):
            stop = min(stop, bisect_right(idx, value, key=_head))
        elif bound.op == "lt":
            stop = min(stop, bisect_left(idx, value, key=_head))
    return start, stop


def _head(entry: tuple[Any, ...]) -> Any:
    return entry[0]


def count_matching(store: KindStore, predicate: Predicate | None) -> int:
    if predicate is None:
        return len(store.records)
    return sum(1 for r in store.records.values() if predicate(r.values))


def coerce(kind_name: str, prop_kind: str, value: Any, *, ieee754: bool = False) -> Any:
    """A JSON value converted to the typed value of a property (control API and PATCH bodies).

    ``ieee754``: the body was sent with ``IEEE754Compatible=true``, so a decimal may come as a JSON string."""
    if value is None:
        return None
    if prop_kind == DATETIME:
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC)
        return parse_datetime(str(value))
    if prop_kind == DATE:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value))
    if prop_kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{kind_name}: expected an integer, got {value!r}")
        return value
    if prop_kind == DECIMAL:
        if ieee754 and isinstance(value, str):
            return _decimal_string(kind_name, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{kind_name}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{kind_name}: expected a string, got {value!r}")
    return value


def _decimal_string(kind_name: str, text: str) -> float:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{kind_name}: expected a decimal string, got {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"{kind_name}: expected a finite decimal, got {text!r}")
    return float(number)
