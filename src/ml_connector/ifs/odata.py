"""OData v4 literals, filter expressions, keys and query strings for IFS Cloud.

Everything that puts a *value* into a URL goes through :func:`literal`, and every *name* through
:func:`check_name`, so no value can change the meaning of a filter or address another record:

* strings are single-quoted with embedded quotes doubled (``O'Brien`` → ``'O''Brien'``);
* dates are bare ``2025-01-31``; datetimes are converted to UTC and written ``2025-01-31T10:00:00Z``
  (a naive datetime is refused: IFS would read it in the server's zone); a :class:`WallTime` (the server's wall
  time, for an attribute that is not time-zone aware) is written with its own digits and ``Z``, as IFS shows it;
* numbers are bare (no exponent, no NaN/inf); ``None`` is ``null``; booleans ``true``/``false``;
* enums are namespace-qualified, ``IfsApp.PurchaseOrderHandling.PurchaseOrderState'Released'`` (IFS answers a plain
  string compared with an enum property with 400).

Percent-encoding happens once, at the end, in :func:`encode_query` / :func:`entity_path`. ``$`` stays literal in
option names and ``+`` is always ``%2B`` (some servers read a raw ``+`` in a query as a space).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_ENTITY_SET = re.compile(r"^(?P<projection>[A-Za-z_][A-Za-z0-9_]*)\.svc/(?P<set>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class EnumLiteral:
    """A qualified enum value: ``EnumLiteral("IfsApp.PurchaseOrderHandling.PurchaseOrderState", "Released")``."""

    type_name: str
    value: str

    def __post_init__(self) -> None:
        if not _QUALIFIED.match(self.type_name):
            raise ValueError(f"enum type must be a qualified name such as IfsApp.Projection.Enum: {self.type_name!r}")


@dataclass(frozen=True)
class WallTime:
    """A wall time in the IFS server's zone (``value`` naive): the literal of a date-time attribute that is not
    time-zone aware, which IFS compares by its digits whatever ``Z`` or offset follows them (ifs-api.md §3.9)."""

    value: dt.datetime

    def __post_init__(self) -> None:
        if self.value.tzinfo is not None:
            raise ValueError("a WallTime is naive: the server's zone gives it its meaning")


Scalar = str | int | float | Decimal | bool | None | dt.date | dt.datetime | EnumLiteral | WallTime
KeyValue = str | int
Key = Mapping[str, KeyValue]


def check_name(name: str) -> str:
    """A property name or navigation path (``A/B``); anything else is refused rather than quoted."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"not an OData property name: {name!r}")
    return name


def quote_string(value: str) -> str:
    """``'...'`` with embedded single quotes doubled, the only escape OData string literals have."""
    return "'" + value.replace("'", "''") + "'"


def format_datetime(value: dt.datetime) -> str:
    """UTC with ``Z``; whole seconds unless there are microseconds. Naive datetimes are refused."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("naive datetime: give a timezone so the value means one instant (IFS reads naive as local)")
    return _digits_z(value.astimezone(dt.UTC))


def _digits_z(utc: dt.datetime) -> str:
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_number(value: int | float | Decimal) -> str:
    if isinstance(value, bool):  # bool is an int; never let True become 1
        raise TypeError("bool is not a number literal")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no OData literal")
        value = Decimal(repr(value))
    if not value.is_finite():
        raise ValueError(f"{value!r} has no OData literal")
    text = format(value, "f")
    return text


def literal(value: Scalar) -> str:
    """The OData literal for ``value`` (see the module docstring for the forms)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, EnumLiteral):
        return value.type_name + quote_string(value.value)
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, int | float | Decimal):
        return format_number(value)
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return format_datetime(value)
    if isinstance(value, WallTime):
        return _digits_z(value.value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"no OData literal for {type(value).__name__}")


# --------------------------------------------------------------------------------------------------- expressions


class Expr:
    """A boolean filter expression; combine with ``&``, ``|`` and ``~``. Render with ``str()``."""

    def render(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()

    def __and__(self, other: Expr | str) -> Expr:
        return And((self, _as_expr(other)))

    def __or__(self, other: Expr | str) -> Expr:
        return Or((self, _as_expr(other)))

    def __invert__(self) -> Expr:
        return Not(self)


@dataclass(frozen=True)
class Raw(Expr):
    """Operator-written filter text from configuration; always parenthesised when combined."""

    text: str

    def render(self) -> str:
        return self.text


@dataclass(frozen=True)
class Compare(Expr):
    field: str
    op: str
    value: Scalar

    def __post_init__(self) -> None:
        check_name(self.field)
        if self.op not in {"eq", "ne", "gt", "ge", "lt", "le"}:
            raise ValueError(f"unknown comparison operator {self.op!r}")

    def render(self) -> str:
        return f"{self.field} {self.op} {literal(self.value)}"


@dataclass(frozen=True)
class Call(Expr):
    """``contains(Field,'x')``, ``startswith``, ``endswith``; ``lower=True`` wraps the field in ``tolower``."""

    func: str
    field: str
    value: str
    lower: bool = False

    def __post_init__(self) -> None:
        check_name(self.field)
        if self.func not in {"contains", "startswith", "endswith"}:
            raise ValueError(f"unknown string function {self.func!r}")

    def render(self) -> str:
        field = f"tolower({self.field})" if self.lower else self.field
        value = self.value.lower() if self.lower else self.value
        return f"{self.func}({field},{quote_string(value)})"


@dataclass(frozen=True)
class And(Expr):
    parts: tuple[Expr, ...]

    def render(self) -> str:
        return " and ".join(f"({p.render()})" for p in self.parts)


@dataclass(frozen=True)
class Or(Expr):
    parts: tuple[Expr, ...]

    def render(self) -> str:
        return " or ".join(f"({p.render()})" for p in self.parts)


@dataclass(frozen=True)
class Not(Expr):
    part: Expr

    def render(self) -> str:
        return f"not ({self.part.render()})"


def _as_expr(value: Expr | str) -> Expr:
    return value if isinstance(value, Expr) else Raw(value)


class F:
    """Field reference for building filters: ``F("OrderNo") == "PO-1"``, ``F("TotalAmount") > 100``."""

    def __init__(self, name: str) -> None:
        self.name = check_name(name)

    def __eq__(self, value: object) -> Expr:  # type: ignore[override]
        return Compare(self.name, "eq", value)  # type: ignore[arg-type]

    def __ne__(self, value: object) -> Expr:  # type: ignore[override]
        return Compare(self.name, "ne", value)  # type: ignore[arg-type]

    def __gt__(self, value: Scalar) -> Expr:
        return Compare(self.name, "gt", value)

    def __ge__(self, value: Scalar) -> Expr:
        return Compare(self.name, "ge", value)

    def __lt__(self, value: Scalar) -> Expr:
        return Compare(self.name, "lt", value)

    def __le__(self, value: Scalar) -> Expr:
        return Compare(self.name, "le", value)

    __hash__ = None  # type: ignore[assignment]

    def contains(self, value: str, *, lower: bool = False) -> Expr:
        return Call("contains", self.name, value, lower)

    def startswith(self, value: str, *, lower: bool = False) -> Expr:
        return Call("startswith", self.name, value, lower)

    def endswith(self, value: str, *, lower: bool = False) -> Expr:
        return Call("endswith", self.name, value, lower)

    def in_(self, values: Iterable[Scalar]) -> Expr:
        """``F eq a or F eq b ...`` (IFS's OData has no ``in``)."""
        parts = tuple(Compare(self.name, "eq", v) for v in values)
        if not parts:
            raise ValueError("in_() needs at least one value")
        return parts[0] if len(parts) == 1 else Or(parts)


def and_(*parts: Expr | str | None) -> Expr | None:
    """AND of the parts that are not None/empty; None when nothing remains."""
    kept = tuple(_as_expr(p) for p in parts if p is not None and (not isinstance(p, str) or p.strip()))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(kept)


def or_(*parts: Expr | str) -> Expr:
    kept = tuple(_as_expr(p) for p in parts)
    if not kept:
        raise ValueError("or_() needs at least one part")
    return kept[0] if len(kept) == 1 else Or(kept)


def key_match(key: Key) -> Expr:
    """``A eq 'x' and B eq 2`` for a (composite) key."""
    if not key:
        raise ValueError("empty key")
    parts = tuple(Compare(name, "eq", value) for name, value in key.items())
    return parts[0] if len(parts) == 1 else And(parts)


# ------------------------------------------------------------------------------------------------------- order by


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool = False

    def __post_init__(self) -> None:
        check_name(self.field)

    def render(self) -> str:
        return f"{self.field} desc" if self.descending else self.field

    @classmethod
    def parse(cls, text: str) -> OrderKey:
        """``"Cf_Changed_At desc"`` → ``OrderKey("Cf_Changed_At", True)``."""
        parts = text.split()
        if len(parts) == 1 or (len(parts) == 2 and parts[1].lower() in {"asc", "desc"}):
            return cls(parts[0], len(parts) == 2 and parts[1].lower() == "desc")
        raise ValueError(f"not an $orderby item: {text!r}")


def parse_orderby(value: str | Sequence[str | OrderKey] | None) -> list[OrderKey]:
    if value is None:
        return []
    items: Sequence[str | OrderKey] = value.split(",") if isinstance(value, str) else value
    return [i if isinstance(i, OrderKey) else OrderKey.parse(i.strip()) for i in items if not isinstance(i, str) or i]


def total_order(orderby: Sequence[OrderKey], key_fields: Sequence[str]) -> list[OrderKey]:
    """``orderby`` followed by the key fields it lacks, so the order is total and keyset paging is exact."""
    present = {o.field for o in orderby}
    return list(orderby) + [OrderKey(k) for k in key_fields if k not in present]


def keyset_after(order: Sequence[OrderKey], last: Sequence[Scalar]) -> Expr:
    """Rows strictly after ``last`` in ``order``: ``(a gt x) or (a eq x and b gt y) or ...``.

    Nulls sort first ascending (OData v4 URL conventions, $orderby), so "after null" on an ascending field is
    ``a ne null`` and nothing is "after" a non-null value on the null side; descending mirrors that.
    """
    if len(order) != len(last) or not order:
        raise ValueError("keyset needs one value per order key")
    branches: list[Expr] = []
    for i, (ok, value) in enumerate(zip(order, last, strict=True)):
        prefix = [Compare(order[j].field, "eq", last[j]) for j in range(i)]
        step = _strictly_after(ok, value)
        if step is None:
            continue
        parts = (*prefix, step)
        branches.append(parts[0] if len(parts) == 1 else And(parts))
    if not branches:
        # Every field is at its extreme (descending nulls): nothing can follow.
        return Compare(order[0].field, "eq", None) & Compare(order[0].field, "ne", None)
    return branches[0] if len(branches) == 1 else Or(tuple(branches))


def _strictly_after(ok: OrderKey, value: Scalar) -> Expr | None:
    if value is None:
        return None if ok.descending else Compare(ok.field, "ne", None)
    if ok.descending:
        # Descending: smaller values follow, and nulls come last.
        return Or((Compare(ok.field, "lt", value), Compare(ok.field, "eq", None)))
    return Compare(ok.field, "gt", value)


# --------------------------------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class EntitySetRef:
    """``PurchaseOrderHandling.svc/PurchaseOrderSet`` split into projection and set."""

    projection: str
    name: str

    @classmethod
    def parse(cls, text: str) -> EntitySetRef:
        match = _ENTITY_SET.match(text.strip().strip("/"))
        if not match:
            raise ValueError(f"entity set must look like Projection.svc/EntitySet, got {text!r}")
        return cls(match["projection"], match["set"])

    @property
    def path(self) -> str:
        return f"{self.projection}.svc/{self.name}"


# Characters left readable in path segments and query values; everything else (including / # % & ? + space and
# non-ASCII) is percent-encoded so a value can never end the segment or the query option it sits in.
_PATH_SAFE = "'(),=:@!*;"
QUERY_SAFE = "'(),:@!*;/"


def key_predicate(key: Key) -> str:
    """``(OrderNo='A''B')``, ``(WoNo=12)``, ``(OrderNo='X',LineNo='1',ReleaseNo='1')`` — not yet URL-encoded."""
    if not key:
        raise ValueError("empty key")
    parts = []
    for name, value in key.items():
        check_name(name)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"key {name} must be str or int, got {type(value).__name__}")
        parts.append(f"{name}={literal(value)}")
    return "(" + ",".join(parts) + ")"


def entity_path(entity_set: str | EntitySetRef, key: Key | None = None, *suffix: str) -> str:
    """Relative URL path of a set, one entity, or something bound to it, percent-encoded."""
    ref = entity_set if isinstance(entity_set, EntitySetRef) else EntitySetRef.parse(entity_set)
    path = ref.path
    if key is not None:
        path += quote(key_predicate(key), safe=_PATH_SAFE)
    for part in suffix:
        if not (_QUALIFIED.match(part) or _NAME.match(part) or part == "$count"):
            raise ValueError(f"not a path segment: {part!r}")
        path += "/" + part
    return path


def encode_query(options: Mapping[str, str | int | None]) -> str:
    """``$filter=...&$top=...`` with values percent-encoded and ``$`` kept literal in names; None is skipped."""
    parts = []
    for name, value in options.items():
        if value is None:
            continue
        if not re.match(r"^\$?[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValueError(f"not a query option name: {name!r}")
        parts.append(f"{name}={quote(str(value), safe=QUERY_SAFE)}")
    return "&".join(parts)


def select_list(select: Sequence[str] | str | None) -> str | None:
    if select is None:
        return None
    names = [s.strip() for s in select.split(",")] if isinstance(select, str) else list(select)
    return ",".join(check_name(n) for n in names if n)


def filter_text(value: Expr | str | None) -> str | None:
    if value is None:
        return None
    text = value.render() if isinstance(value, Expr) else value.strip()
    return text or None
