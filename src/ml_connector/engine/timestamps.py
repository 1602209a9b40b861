"""Timestamps as the engine stores and compares them: always aware, always UTC on the way out; and the IFS
server's wall time of attributes that are not time-zone aware."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


def parse_ts(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------- server wall time
# An IFS date-time attribute that is not time-zone aware (most custom attributes) holds the server's wall time and
# shows it with a meaningless "Z". These convert between it and instants. A wall time repeated by a fall-back change
# reads as its first instant (the earlier one: a cursor may go back, never forward); a wall time in a spring-forward
# gap reads with the offset before the change (Python's fold=0).


def wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """The server's wall time (naive) at ``instant``."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def wall_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of the server's wall time ``wall``; any tzinfo on ``wall`` is ignored (IFS's "Z")."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def earliest_wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """The smallest wall time any instant at or after ``instant`` has: ``wall_time(instant)``, except in the first
    pass through a fall-back hour, where the repeat that follows starts lower. A filter ``>=`` this misses nothing."""
    wall = wall_time(instant, zone)
    repeat = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if repeat <= instant.astimezone(UTC):
        return wall  # no later instant shows this wall time again
    return wall_time(_offset_change(instant, repeat, zone), zone)


def _offset_change(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first whole second in (before, after] whose UTC offset in ``zone`` is ``after``'s."""
    lo, hi = math.floor(before.timestamp()), math.ceil(after.timestamp())
    old = before.astimezone(zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == old:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


@dataclass(frozen=True)
class CursorTime:
    """How a flow's cursor attribute travels: instants (``zone`` None: a time-zone-aware attribute, read with the
    time-zone header) or the IFS server's wall time in ``zone`` (an attribute that is not time-zone aware)."""

    zone: ZoneInfo | None = None

    def read(self, value: Any) -> datetime | None:
        """A row's cursor value as an instant (UTC)."""
        parsed = parse_ts(value)
        if parsed is None or self.zone is None:
            return parsed
        return wall_instant(parsed, self.zone)

    def since(self, instant: datetime) -> datetime:
        """The lower bound of a filter for changes at or after ``instant``: the instant itself (aware), or the
        naive wall time no later change can fall below."""
        if self.zone is None:
            return instant
        return earliest_wall_time(instant, self.zone)
