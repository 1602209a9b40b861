from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ml_connector.errors import ConfigError
from ml_connector.jira import jql


def test_quote_escapes_jql_specials() -> None:
    assert jql.quote('a"b') == '"a\\"b"'
    assert jql.quote("a\\b") == '"a\\\\b"'
    assert jql.quote("it's") == '"it\\\'s"'
    assert jql.quote("x\ny\tz\r") == '"x\\ny\\tz\\r"'
    assert jql.quote("\x01") == '"\\u0001"'
    assert jql.quote('") OR project = X OR ("') == '"\\") OR project = X OR (\\""'


def test_builders() -> None:
    assert jql.eq("labels", "ifs-PO 1") == 'labels = "ifs-PO 1"'
    assert jql.in_("project", ["PROC", "MAINT"]) == 'project in ("PROC", "MAINT")'
    assert jql.not_in("status", ["Done"]) == 'status not in ("Done")'
    assert jql.field("customfield_10050") == "cf[10050]"
    assert jql.field("Cost Center") == '"Cost Center"'
    assert jql.all_of("a = 1", "", "b = 2") == "(a = 1) AND (b = 2)"
    assert jql.all_of("a = 1") == "a = 1"
    assert jql.order_by("project = X", "updated", "key DESC") == "project = X ORDER BY updated, key DESC"
    with pytest.raises(ValueError):
        jql.in_("project", [])
    with pytest.raises(ValueError):
        jql.order_by("x", "key sideways")


def test_updated_bound_negative_offset_floors_to_minute() -> None:
    instant = datetime(2026, 1, 15, 18, 30, 59, 999000, tzinfo=UTC)  # 10:30:59 PST (UTC-8)
    assert jql.updated_bound(instant, "America/Los_Angeles") == "2026-01-15 10:30"
    assert jql.updated_since(instant, "America/Los_Angeles") == 'updated >= "2026-01-15 10:30"'


def test_updated_bound_crosses_date_line_in_local_zone() -> None:
    instant = datetime(2026, 7, 1, 3, 5, tzinfo=UTC)  # still June 30 in Los Angeles (UTC-7 in summer)
    assert jql.updated_bound(instant, "America/Los_Angeles") == "2026-06-30 20:05"
    assert jql.updated_bound(instant, "Asia/Kolkata") == "2026-07-01 08:35"


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Berlin", "Australia/Lord_Howe", "UTC"])
def test_bound_never_after_instant_even_in_ambiguous_hours(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for step in range(0, 366 * 24 * 4, 7):  # every 105 minutes over a year, crossing both DST changes
        instant = start + timedelta(minutes=15 * step, seconds=13)
        wall = datetime.strptime(jql.updated_bound(instant, zone), "%Y-%m-%d %H:%M")
        latest = max(wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
        assert latest <= instant
        assert instant - latest < timedelta(hours=1, minutes=1)


def test_ambiguous_fall_back_hour_steps_back() -> None:
    # 2026-11-01 01:30 PDT (08:30Z) is ambiguous in Los Angeles: 01:30 also exists in PST (09:30Z).
    instant = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    assert jql.updated_bound(instant, "America/Los_Angeles") == "2026-11-01 00:30"


def test_updated_bound_needs_aware_instant_and_known_zone() -> None:
    with pytest.raises(ValueError):
        jql.updated_bound(datetime(2026, 1, 1), "UTC")
    with pytest.raises(ConfigError):
        jql.updated_bound(datetime(2026, 1, 1, tzinfo=UTC), "Mars/Olympus")


def test_changed_since_reaches_a_minute_before_the_floored_bound() -> None:
    # 18:30:59 UTC is 10:30:59 in Los Angeles: ``updated >=`` floors to 10:30; AFTER starts a minute earlier, so a
    # change at 10:30:00.000 is inside whether Jira reads AFTER as ">" or ">=" the minute.
    instant = datetime(2026, 1, 15, 18, 30, 59, tzinfo=UTC)
    assert jql.changed_since("status", instant, "America/Los_Angeles") == 'status CHANGED AFTER "2026-01-15 10:29"'
    assert jql.changed_since("Cost Center", instant, "UTC") == '"Cost Center" CHANGED AFTER "2026-01-15 18:29"'
    with pytest.raises(ValueError):
        jql.changed_since("status", datetime(2026, 1, 15, 18, 30), "UTC")  # naive: which zone was meant?
