"""The server's time zone and the ``X-Ifs-Time-Zone-Aware-Request`` header (ifs-api.md §3.9, D11).

IFS writes every timestamp with a ``Z`` but, by default, means the server's (site's) wall time by it. The rules the
simulator follows:

* A time-zone-aware attribute is stored as an instant. With ``X-Ifs-Time-Zone-Aware-Request: true`` its values are
  served in UTC and a filter literal means the instant it writes (``Z`` or an offset). Without the header its values
  are served as the server's wall time (still with ``Z``) and a filter literal's digits are read as the server's wall
  time, whatever offset it carries.
* A naive attribute (a custom attribute ``Cf_*`` that is not time-zone aware) stores the server's wall time, is
  served as that wall time with ``Z`` and compares a filter literal's digits with it, with or without the header.
* A wall time read in the server's zone takes the first of two instants in a fall-back fold and the offset before
  the change for a time in a spring-forward gap (Python's ``fold=0``).

Inside the simulator a wall time is kept as an aware datetime labelled UTC whose digits are the wall time, so
naive and aware values sort and compare with the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ml_connector.sim.ifs.odata_syntax import DATETIME, parse_datetime

AWARE_HEADER = "x-ifs-time-zone-aware-request"


def server_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``America/Chicago``); ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as 'America/Chicago')") from None


def wall_time(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The server's wall time at ``instant``, labelled UTC (the simulator's form of a naive value)."""
    return instant.astimezone(zone).replace(tzinfo=dt.UTC, fold=0)


def wall_instant(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The instant whose wall time in ``zone`` has ``value``'s digits (its offset is ignored); fold=0."""
    return value.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)


def naive_props(props: Mapping[str, str], custom_aware: bool) -> frozenset[str]:
    """The date-time attributes stored as wall time: the custom ones, when custom attributes are not zone-aware."""
    if custom_aware:
        return frozenset()
    return frozenset(name for name, kind in props.items() if kind == DATETIME and name.startswith("Cf_"))


@dataclass(frozen=True)
class ZoneView:
    """How one request reads and writes date-times: the server's zone, the naive attributes, the header."""

    zone: ZoneInfo
    naive: frozenset[str]
    aware_request: bool

    @property
    def shifts(self) -> bool:
        """Whether aware values are served as wall time that differs from UTC."""
        return not self.aware_request and self.zone.key != "UTC"

    def literal(self, prop: str, value: dt.datetime) -> dt.datetime:
        """A filter literal compared with ``prop``, in the form that attribute is stored in."""
        if prop in self.naive:
            return value.replace(tzinfo=dt.UTC)
        if self.aware_request:
            return value.astimezone(dt.UTC)
        return wall_instant(value, self.zone)

    def row(self, row: dict[str, Any], props: Mapping[str, str]) -> dict[str, Any]:
        """A served row with its aware date-times as wall time when the request did not send the header."""
        if not self.shifts:
            return row
        out = dict(row)
        for name, kind in props.items():
            value = out.get(name)
            if kind == DATETIME and name not in self.naive and isinstance(value, str):
                out[name] = wall_time(parse_datetime(value), self.zone).replace(tzinfo=None).isoformat() + "Z"
        return out


def aware_request(headers: Mapping[str, str]) -> bool:
    """Whether a request sent ``X-Ifs-Time-Zone-Aware-Request: true``."""
    return headers.get(AWARE_HEADER, "").strip().lower() == "true"
