"""JQL building with safe quoting, and the time-zone-safe ``updated >=`` bound.

Every value is emitted as a double-quoted JQL string literal, escaped per the JQL lexer (``\\"``, ``\\'``,
``\\\\``, ``\\n``, ``\\r``, ``\\t`` and ``\\uXXXX`` for other control characters), so no value can change the query's
structure: ``AND``, ``)``, ``"`` or reserved words inside a value stay part of the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ml_connector.errors import ConfigError

_SIMPLE_FIELD = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*|cf\[\d+\])$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
JQL_DATETIME_FORMAT = "%Y-%m-%d %H:%M"


def quote(value: str | int) -> str:
    """A JQL string literal for ``value``; matching is exact for ``=``/``in`` on labels, keys and properties."""
    text = str(value)
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def field(name: str) -> str:
    """A field reference: plain names and ``cf[N]`` as they are, anything else (``Cost Center``) quoted."""
    if name.startswith("customfield_") and name[len("customfield_") :].isdigit():
        return f"cf[{name[len('customfield_') :]}]"
    return name if _SIMPLE_FIELD.match(name) else quote(name)


def eq(name: str, value: str | int) -> str:
    return f"{field(name)} = {quote(value)}"


def ne(name: str, value: str | int) -> str:
    return f"{field(name)} != {quote(value)}"


def contains(name: str, value: str) -> str:
    """``~`` (text search): fuzzy by design in Jira; confirm exactness client-side."""
    return f"{field(name)} ~ {quote(value)}"


def in_(name: str, values: Iterable[str | int]) -> str:
    items = [quote(v) for v in values]
    if not items:
        raise ValueError(f"empty value list for {name} in (...)")
    return f"{field(name)} in ({', '.join(items)})"


def not_in(name: str, values: Iterable[str | int]) -> str:
    items = [quote(v) for v in values]
    if not items:
        raise ValueError(f"empty value list for {name} not in (...)")
    return f"{field(name)} not in ({', '.join(items)})"


def all_of(*clauses: str) -> str:
    parts = [c for c in clauses if c]
    return " AND ".join(f"({c})" if len(parts) > 1 else c for c in parts)


def order_by(query: str, *fields: str) -> str:
    """Append ``ORDER BY``; a field may end in `` DESC``/`` ASC``. Jira allows at most 7 fields."""
    if not fields:
        return query
    if len(fields) > 7:
        raise ValueError("JQL ORDER BY takes at most 7 fields")
    rendered = []
    for spec in fields:
        name, _, direction = spec.partition(" ")
        direction = direction.strip().upper()
        if direction not in ("", "ASC", "DESC"):
            raise ValueError(f"bad sort direction in {spec!r}")
        rendered.append(field(name) + (f" {direction}" if direction else ""))
    return f"{query} ORDER BY {', '.join(rendered)}"


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {time_zone!r} reported for the Jira account") from None


def updated_bound(instant: datetime, time_zone: str) -> str:
    """The wall-clock minute, in the account's zone, to use in ``updated >= "..."`` for a UTC ``instant``.

    JQL reads datetimes in the searching user's time zone with minute precision. Flooring to the minute never excludes
    an issue updated at or after ``instant``; the overlap (up to a minute, or an hour in an ambiguous DST hour)
    is for callers to dedupe.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("updated_bound needs a time-zone-aware instant")
    zone = _zone(time_zone)
    target = instant.astimezone(UTC)
    probe = target
    for _ in range(4):
        wall = probe.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
        # In a repeated (fall-back) hour the same wall time names two instants; Jira may read the later one.
        latest = max(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
        if latest <= target:
            return wall.strftime(JQL_DATETIME_FORMAT)
        probe = probe - (latest - target)
    raise AssertionError("unreachable: a wall time an hour earlier is never ambiguous twice")  # pragma: no cover


def updated_since(instant: datetime, time_zone: str) -> str:
    """``updated >= "yyyy-MM-dd HH:mm"`` for ``instant`` rendered in ``time_zone``."""
    return f"updated >= {quote(updated_bound(instant, time_zone))}"


def changed_since(name: str, instant: datetime, time_zone: str) -> str:
    """``NAME CHANGED AFTER "yyyy-MM-dd HH:mm"``: the issues whose ``name`` changed at or after ``instant``.

    A history search (Jira Cloud supports ``CHANGED`` on status, assignee, priority, reporter, resolution and fix
    version). The bound is a minute earlier than :func:`updated_bound` gives, so whether Jira reads ``AFTER`` a
    minute as "from its first millisecond" or "after its first millisecond" never drops a change at ``instant``.
    """
    return f"{field(name)} CHANGED AFTER {quote(updated_bound(instant - timedelta(minutes=1), time_zone))}"
