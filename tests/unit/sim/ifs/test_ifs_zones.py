"""The simulator's time-zone rules (sim/ifs/zones.py) against the connector's conversion (engine/timestamps.py): what
one serves without the header, or stores for a naive attribute, the other reads back as the same instant."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.engine.timestamps import CursorTime
from ml_connector.ifs.odata import WallTime, literal
from ml_connector.sim.ifs.odata import compile_filter
from ml_connector.sim.ifs.odata_syntax import DATETIME, PropType
from ml_connector.sim.ifs.zones import ZoneView, wall_instant, wall_time

ZONES = st.sampled_from(["UTC", "America/Chicago", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/Berlin"])
instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=st.just(dt.UTC)
).map(lambda d: d.replace(microsecond=0))
PROPS = {"Cf_Changed_At": DATETIME, "RegDate": DATETIME}
TYPES = {name: PropType(kind) for name, kind in PROPS.items()}


@settings(max_examples=300, deadline=None)
@given(instant=instants, zone_name=ZONES)
def test_served_wall_time_reads_back_as_the_instant(instant: dt.datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    view = ZoneView(zone, frozenset(), aware_request=False)
    shown = view.row({"RegDate": instant.isoformat().replace("+00:00", "Z")}, PROPS)["RegDate"]
    read = CursorTime(zone).read(shown)
    assert read is not None and wall_time(read, zone) == wall_time(instant, zone) and read <= instant


@settings(max_examples=300, deadline=None)
@given(cursor=instants, zone_name=ZONES, step=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=4)))
def test_the_connectors_bound_admits_every_later_naive_stamp(
    cursor: dt.datetime, zone_name: str, step: dt.timedelta
) -> None:
    zone = ZoneInfo(zone_name)
    bound = literal(WallTime(CursorTime(zone).since(cursor)))
    for aware in (True, False):
        view = ZoneView(zone, frozenset({"Cf_Changed_At"}), aware_request=aware)
        compiled = compile_filter(f"Cf_Changed_At ge {bound}", TYPES, view.literal)
        assert compiled.predicate({"Cf_Changed_At": wall_time(cursor + step, zone)})


def test_wall_instant_ignores_the_written_offset() -> None:
    chicago = ZoneInfo("America/Chicago")
    written = dt.datetime(2025, 7, 1, 7, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert wall_instant(written, chicago) == dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)
