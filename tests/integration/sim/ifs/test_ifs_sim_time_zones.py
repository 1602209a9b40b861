"""The server's time zone and ``X-Ifs-Time-Zone-Aware-Request`` (ifs-api.md §3.9): zone-aware and naive attributes,
served values and filter literals, with and without the header; the control API and options for the zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from ml_connector.sim.ifs import IfsSimOptions

from .conftest import WO_READ, Ifs

AWARE = {"X-Ifs-Time-Zone-Aware-Request": "true"}


def _rows(ifs: Ifs, filter_text: str, *, aware: bool) -> list[dict[str, Any]]:
    headers = AWARE if aware else {}
    response = ifs.get(WO_READ, {"$filter": filter_text, "$select": "WoNo,Cf_Changed_At,RegDate"}, **headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["value"]
    return rows


def _stamp(ifs: Ifs, instant: str) -> None:
    ifs.sim.edit("WorkOrder", 1001, {"Cf_Changed_At": instant, "RegDate": instant})


def test_aware_values_are_server_wall_time_without_the_header(ifs: Ifs) -> None:
    ifs.sim.reset(time_zone="America/Chicago")
    _stamp(ifs, "2025-07-01T12:00:00Z")
    (with_header,) = _rows(ifs, "WoNo eq 1001", aware=True)
    (without,) = _rows(ifs, "WoNo eq 1001", aware=False)
    assert (with_header["Cf_Changed_At"], with_header["RegDate"]) == ("2025-07-01T12:00:00Z", "2025-07-01T12:00:00Z")
    assert (without["Cf_Changed_At"], without["RegDate"]) == ("2025-07-01T07:00:00Z", "2025-07-01T07:00:00Z")


def test_filter_literals_follow_the_header(ifs: Ifs) -> None:
    ifs.sim.reset(time_zone="America/Chicago")
    _stamp(ifs, "2025-07-01T12:00:00Z")
    scope = "WoNo eq 1001 and "
    assert _rows(ifs, scope + "Cf_Changed_At ge 2025-07-01T12:00:00Z", aware=True)
    assert not _rows(ifs, scope + "Cf_Changed_At gt 2025-07-01T12:00:00Z", aware=True)
    assert _rows(ifs, scope + "Cf_Changed_At eq 2025-07-01T17:30:00+05:30", aware=True)  # an offset: its instant
    # Without the header the digits are the server's wall time, whatever the Z or offset says.
    assert _rows(ifs, scope + "Cf_Changed_At eq 2025-07-01T07:00:00Z", aware=False)
    assert _rows(ifs, scope + "Cf_Changed_At eq 2025-07-01T07:00:00+05:30", aware=False)
    assert not _rows(ifs, scope + "Cf_Changed_At ge 2025-07-01T12:00:00Z", aware=False)


def test_naive_custom_attributes_are_wall_time_whatever_the_header(ifs: Ifs) -> None:
    ifs.sim.reset(time_zone="Asia/Kolkata", custom_attributes_time_zone_aware=False)
    _stamp(ifs, "2025-07-01T12:00:00Z")  # control-API values are instants: stored as 17:30 wall time
    for aware in (True, False):
        (row,) = _rows(ifs, "WoNo eq 1001", aware=aware)
        assert row["Cf_Changed_At"] == "2025-07-01T17:30:00Z"
        assert row["RegDate"] == ("2025-07-01T12:00:00Z" if aware else "2025-07-01T17:30:00Z")  # RegDate is aware
        assert _rows(ifs, "WoNo eq 1001 and Cf_Changed_At eq 2025-07-01T17:30:00Z", aware=aware)
        assert not _rows(ifs, "WoNo eq 1001 and Cf_Changed_At eq 2025-07-01T12:00:00Z", aware=aware)


def test_new_stamps_of_naive_attributes_are_the_server_wall_clock(ifs: Ifs) -> None:
    ifs.sim.reset(time_zone="Asia/Kolkata", custom_attributes_time_zone_aware=False)
    edited = ifs.sim.edit("WorkOrder", 1001, {"ErrDescr": "now"})
    stamp = dt.datetime.fromisoformat(edited["Cf_Changed_At"].replace("Z", ""))
    wall_now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5, minutes=30)
    assert abs((stamp - wall_now.replace(tzinfo=None)).total_seconds()) < 5


def test_naive_order_follows_wall_time_through_a_fall_back_fold(ifs: Ifs) -> None:
    ifs.sim.reset(time_zone="America/Chicago", custom_attributes_time_zone_aware=False)
    ifs.sim.edit("WorkOrder", 1001, {"Cf_Changed_At": "2025-11-02T06:30:00Z"})  # 01:30 CDT, the first pass
    ifs.sim.edit("WorkOrder", 1002, {"Cf_Changed_At": "2025-11-02T07:10:00Z"})  # 01:10 CST, an instant later
    response = ifs.get(
        WO_READ,
        {"$filter": "WoNo le 1002 and WoNo ge 1001", "$orderby": "Cf_Changed_At", "$select": "WoNo,Cf_Changed_At"},
        **AWARE,
    )
    rows = [(r["WoNo"], r["Cf_Changed_At"]) for r in response.json()["value"]]
    assert rows == [(1002, "2025-11-02T01:10:00Z"), (1001, "2025-11-02T01:30:00Z")]


def test_control_api_moves_the_server_zone(ifs: Ifs) -> None:
    assert ifs.http.get("/_sim/time-zone").json() == {
        "time_zone": "UTC",
        "custom_attributes_time_zone_aware": True,
    }
    answer = ifs.http.put("/_sim/time-zone", json={"time_zone": "Europe/Berlin"})
    assert answer.status_code == 200 and answer.json()["time_zone"] == "Europe/Berlin"
    assert ifs.http.get("/_sim/").json()["time_zone"] == "Europe/Berlin"
    _stamp(ifs, "2025-01-15T12:00:00Z")
    (row,) = _rows(ifs, "WoNo eq 1001", aware=False)
    assert row["Cf_Changed_At"] == "2025-01-15T13:00:00Z"
    for bad in ({"time_zone": "Mars/Olympus"}, {"time_zone": 5}, {"zone": "UTC"}):
        assert ifs.http.put("/_sim/time-zone", json=bad).status_code == 400
    ifs.sim.reset()
    assert ifs.sim.time_zone == "UTC"


def test_options_refuse_an_unknown_zone() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        IfsSimOptions(time_zone="Mars/Olympus")
