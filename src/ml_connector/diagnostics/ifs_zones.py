"""Time-zone behaviour of a flow's cursor attribute, as IFS shows it (ifs-api.md §3.9).

The newest row's cursor value is read twice: with ``X-Ifs-Time-Zone-Aware-Request: true`` (as the connector reads)
and with ``false``. A time-zone-aware attribute comes back shifted by the server's UTC offset; an attribute that is
not time-zone aware (or any attribute on a server at UTC) comes back the same. That is compared with the flow's
``cursor_time_zone_aware`` and with ``ifs.server_time_zone``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ml_connector.config.connections import IfsConnection
from ml_connector.config.models import FlowConfig
from ml_connector.diagnostics.results import FAIL, PASS, SKIP, WARN, Findings
from ml_connector.engine.timestamps import parse_ts
from ml_connector.errors import ConnectorError, MalformedResponse
from ml_connector.ifs import IfsClient
from ml_connector.ifs.client import TIME_ZONE_AWARE_HEADER
from ml_connector.ifs.odata import EntitySetRef, encode_query

TENANT_DOWN = "check ifs.url and that the tenant is up"


def _newest_value(ifs: IfsClient, flow: FlowConfig, *, aware: bool) -> tuple[object, datetime] | None:
    """(key, cursor value as written) of the row with the newest cursor value; None when no row has one."""
    field = flow.cursor_field
    assert field is not None
    ref = EntitySetRef.parse(flow.entity_set)
    query = encode_query(
        {"$top": 1, "$select": f"{flow.key},{field}", "$filter": f"{field} ne null", "$orderby": f"{field} desc"}
    )
    headers = {TIME_ZONE_AWARE_HEADER: "true" if aware else "false"}
    _, body = ifs.session.request_json("GET", f"{ref.path}?{query}", headers=headers, pace_keys=("ifs",))
    rows = body.get("value")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        # A missing or mangled collection is no "no rows": the verdict would be a quiet SKIP on a broken answer.
        raise MalformedResponse(f"ifs: expected a collection of rows from GET {ref.path}, got {type(rows).__name__}")
    value = parse_ts(rows[0].get(field)) if rows else None
    return None if value is None else (rows[0].get(flow.key), value)


def _offset(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def check_cursor_zone(ifs: IfsClient, flow: FlowConfig, connection: IfsConnection, findings: Findings) -> None:
    """One finding: what the cursor attribute's values show about the server's zone, against the config."""
    name = f"{flow.name}: cursor time zone"
    try:
        header = _newest_value(ifs, flow, aware=True)
        local = _newest_value(ifs, flow, aware=False)
    except ConnectorError as exc:
        findings.fail("ifs", name, exc, TENANT_DOWN)
        return
    if header is None or local is None or header[0] != local[0]:
        findings.add("ifs", name, SKIP, f"no row with {flow.cursor_field} to compare")
        return
    status, detail, fix = judge(flow, connection, header[1], local[1])
    findings.add("ifs", name, status, detail, fix)


def judge(
    flow: FlowConfig, connection: IfsConnection, with_header: datetime, without: datetime
) -> tuple[str, str, str | None]:
    """(status, detail, fix) for the values one row's cursor attribute shows with and without the header."""
    field, zone_name = flow.cursor_field, connection.server_time_zone
    observed = without - with_header  # the server's offset when the attribute is zone-aware, else 0
    configured = connection.server_zone.utcoffset(with_header.replace(tzinfo=None)) or timedelta(0)
    if observed:
        seen = f"{field} is time-zone aware; the server shows {_offset(observed)} at {with_header:%Y-%m-%d %H:%M}Z"
        if not flow.cursor_time_zone_aware:
            fix = f"set cursor_time_zone_aware: true on flow {flow.name} (IFS converts {field} with the header)"
            return FAIL, seen, fix
        if observed != configured:
            fix = f"ifs.server_time_zone is {zone_name} ({_offset(configured)} then): name the server's zone"
            return WARN, seen, fix
        return PASS, f"{seen}, as ifs.server_time_zone {zone_name} says", None
    same = f"{field} reads the same with and without X-Ifs-Time-Zone-Aware-Request"
    if not flow.cursor_time_zone_aware:
        return PASS, f"{same}: read as wall time in ifs.server_time_zone {zone_name}", None
    if configured:
        fix = (
            f"either {field} is not time-zone aware (set cursor_time_zone_aware: false on flow {flow.name}) or the "
            f"server runs at UTC (set ifs.server_time_zone: UTC)"
        )
        return WARN, f"{same}, but ifs.server_time_zone {zone_name} is {_offset(configured)}", fix
    return (
        PASS,
        f"{same}: the server is at UTC (or {field} is not time-zone aware; on a UTC server it is the same)",
        None,
    )
