"""Instants and the IFS server's wall time (engine/timestamps.py): round trips, DST folds and gaps, cursor bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.engine.timestamps import CursorTime, earliest_wall_time, wall_instant, wall_time

CHICAGO = ZoneInfo("America/Chicago")
instants = st.datetimes(
    min_value=datetime(1980, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC), allow_imaginary=False
)
zones = st.timezones()
later = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=6))


def _first_instant_of_wall(instant: datetime, zone: ZoneInfo) -> bool:
    """Whether no earlier instant shows ``instant``'s wall time (it is not the second pass of a fold)."""
    wall = wall_time(instant, zone)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC) == instant


@settings(max_examples=400, deadline=None)
@given(instant=instants, zone=zones)
def test_an_instant_round_trips_through_the_wall_time(instant: datetime, zone: ZoneInfo) -> None:
    back = wall_instant(wall_time(instant, zone), zone)
    assert wall_time(back, zone) == wall_time(instant, zone)
    if _first_instant_of_wall(instant, zone):
        assert back == instant
    else:  # the second pass of a fall-back fold reads as the first: earlier, never later
        assert instant - timedelta(hours=3) <= back < instant


@settings(max_examples=400, deadline=None)
@given(cursor=instants, zone=zones, step=later)
def test_no_later_change_falls_below_the_cursor_bound(cursor: datetime, zone: ZoneInfo, step: timedelta) -> None:
    bound = earliest_wall_time(cursor, zone)
    assert wall_time(cursor + step, zone) >= bound
    assert wall_time(cursor, zone) - timedelta(hours=3) <= bound <= wall_time(cursor, zone)


@settings(max_examples=200, deadline=None)
@given(instant=instants, zone=zones)
def test_the_cursor_reads_a_row_and_bounds_a_filter_consistently(instant: datetime, zone: ZoneInfo) -> None:
    naive = CursorTime(zone)
    shown = wall_time(instant, zone).isoformat() + "Z"  # as IFS shows a naive attribute
    read = naive.read(shown)
    assert read is not None and read <= instant
    assert naive.since(read) <= wall_time(instant, zone)  # the row is inside the next filter


def test_fall_back_fold_reaches_back_to_the_start_of_the_repeated_hour() -> None:
    first_pass = datetime(2025, 11, 2, 6, 30, tzinfo=UTC)  # 01:30 CDT
    second_pass = datetime(2025, 11, 2, 7, 30, tzinfo=UTC)  # 01:30 CST
    assert wall_time(first_pass, CHICAGO) == wall_time(second_pass, CHICAGO) == datetime(2025, 11, 2, 1, 30)
    assert earliest_wall_time(first_pass, CHICAGO) == datetime(2025, 11, 2, 1, 0)
    assert earliest_wall_time(second_pass, CHICAGO) == datetime(2025, 11, 2, 1, 30)
    assert wall_instant(datetime(2025, 11, 2, 1, 30), CHICAGO) == first_pass


def test_a_wall_time_in_a_spring_forward_gap_reads_with_the_offset_before() -> None:
    assert wall_instant(datetime(2025, 3, 9, 2, 30), CHICAGO) == datetime(2025, 3, 9, 8, 30, tzinfo=UTC)
    assert earliest_wall_time(datetime(2025, 3, 9, 7, 59, tzinfo=UTC), CHICAGO) == datetime(2025, 3, 9, 1, 59)


def test_a_zone_aware_cursor_is_the_instant_itself() -> None:
    aware = CursorTime()
    assert aware.read("2025-07-01T12:00:00Z") == datetime(2025, 7, 1, 12, tzinfo=UTC)
    assert aware.read(None) is None
    assert aware.since(datetime(2025, 7, 1, 12, tzinfo=UTC)) == datetime(2025, 7, 1, 12, tzinfo=UTC)
    assert CursorTime(ZoneInfo("Asia/Kolkata")).read("2025-07-01T17:30:00Z") == datetime(2025, 7, 1, 12, tzinfo=UTC)
