"""Dashboard pages (GET, server-rendered): overview, runs, records, one record's trail, the failed queue, sign-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from ml_connector.config.models import FlowConfig
from ml_connector.mapping.changes import FieldChange, custom_field_names, latest_source, trail_changes
from ml_connector.reasons import LABELS, fix_for, label
from ml_connector.records_csv import csv_lines, record_cells
from ml_connector.store import FAILED_STATES, RECORD_STATES, AuditRow
from ml_connector.web import queries
from ml_connector.web.context import FlowFilter, Viewer, Web, WebContext, here, safe_next, to_int
from ml_connector.web.routes.health import HEALTH_LABELS, SYSTEMS

PAGE_SIZE = 50
CSV_CHUNK = 1000  # records per query of the CSV export
REASON_VALUES = 20  # values listed under one reason; the rest are counted
SYSTEM_NAMES = {"ifs": "IFS Cloud", "jira": "Jira Cloud"}

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, web: Web, next: str = "/") -> Response:
    if not web.auth.token_required:
        return RedirectResponse(here(request, "/"), status_code=303)
    return web.templates.TemplateResponse(request, "login.html", {"next": safe_next(next), "error": None})


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, web: Web, identity: Viewer) -> HTMLResponse:
    health = web.store.health.all()
    systems = [_system_row(web, system, health.get(system)) for system in SYSTEMS]
    counts = web.flow_counts.get()
    return web.page(
        request,
        "index.html",
        identity,
        systems=systems,
        flow_rows=[_flow_row(web, flow, counts) for flow in web.config.flows],
        runs=queries.runs_page(web.store, limit=10),
        inbox_pending=queries.inbox_pending(web.store),
        live_scheduler=web.live_scheduler,
    )


def _system_row(web: WebContext, system: str, row: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": SYSTEM_NAMES[system],
        "status": row["status"] if row else "unknown",
        "label": HEALTH_LABELS.get(row["status"], row["status"]) if row else "Unknown (no contact yet)",
        "reason": web.clean_text(row.get("reason")) if row else "",
        "last_success_at": row.get("last_success_at") if row else None,
        "checked_at": row.get("checked_at") if row else None,
    }


def _flow_row(web: WebContext, flow: FlowConfig, counts: dict[tuple[str, str], int]) -> dict[str, Any]:
    by_state = {s: counts.get((flow.name, s), 0) for s in RECORD_STATES}
    store, control = web.store, web.control
    return {
        "name": flow.name,
        "enabled": flow.enabled,
        "schedule": flow.schedule or "manual",
        "entity_set": flow.entity_set,
        "last_run": store.runs.last(flow.name),
        "next_run": control.next_run(flow.name),
        "paused": control.is_paused(flow.name),
        "sync_requested_at": store.controls.get(flow.name).get("sync_requested_at"),
        "counts": by_state,
        "total": sum(by_state.values()),
        "failed": sum(by_state[s] for s in FAILED_STATES),
        "cursor": store.cursors.get(flow.name),
        "writeback_cursor": store.cursors.get(f"{flow.name}:writeback"),
    }


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request, web: Web, identity: Viewer, flow: FlowFilter, before: str | None = None) -> HTMLResponse:
    rows = queries.runs_page(web.store, flow=flow, before=to_int(before), limit=PAGE_SIZE)
    older = rows[-1].id if len(rows) == PAGE_SIZE else None
    return web.page(request, "runs.html", identity, runs=rows, flow=flow, older=older)


@router.get("/records", response_class=HTMLResponse)
def records(
    request: Request,
    web: Web,
    identity: Viewer,
    flow: FlowFilter,
    state: str | None = None,
    q: str | None = None,
    after: str | None = None,
) -> HTMLResponse:
    state = state if state in RECORD_STATES else None
    search = (q or "").strip()[:400] or None
    result = queries.list_records(
        web.store, flow=flow, states=(state,) if state else (), search=search, after=to_int(after), limit=PAGE_SIZE
    )
    return web.page(
        request,
        "records.html",
        identity,
        rows=result.rows,
        next_after=result.next_after,
        flow=flow,
        state=state,
        q=search or "",
        states=RECORD_STATES,
    )


@router.get("/records.csv")
def records_csv(
    web: Web, _identity: Viewer, flow: FlowFilter, state: str | None = None, q: str | None = None
) -> StreamingResponse:
    """Every record matching the records page's filters, streamed a keyset page at a time."""
    state = state if state in RECORD_STATES else None
    search = (q or "").strip()[:400] or None
    jira_url = str(web.config.jira.url)

    def rows() -> Iterator[list[str]]:
        after: int | None = None
        while True:
            page = queries.list_records(
                web.store, flow=flow, states=(state,) if state else (), search=search, after=after, limit=CSV_CHUNK
            )
            yield from (record_cells(r, jira_url, web.clean_text(r.last_error)) for r in page.rows)
            if page.next_after is None:
                return
            after = page.next_after

    name = "-".join(["records", *(v for v in (flow, state) if v)]) + ".csv"
    return StreamingResponse(
        csv_lines(rows()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, web: Web, identity: Viewer, record_id: int) -> HTMLResponse:
    record, trail = queries.record_with_trail(web.store, record_id)
    if record is None:
        missing = web.templates.get_template("missing.html").render(request=request, what=f"record {record_id}")
        return HTMLResponse(missing, status_code=404)
    draft = record.draft
    payload = json.dumps(web.clean(draft), indent=2, sort_keys=True, default=str) if draft else None
    source = latest_source(trail)
    names = custom_field_names(web.config, web.connector.cached_field_names())
    changes = trail_changes(trail, names)
    return web.page(
        request,
        "record.html",
        identity,
        record=record,
        last_error=web.clean_text(record.last_error),
        payload=payload,
        source=json.dumps(web.clean(source), indent=2, sort_keys=True, default=str) if source else None,
        events=[_event_row(web, e, c) for e, c in zip(trail, changes, strict=True)],
        failed=record.state in FAILED_STATES,
    )


def _event_row(web: WebContext, event: AuditRow, changes: list[FieldChange]) -> dict[str, Any]:
    detail = event.detail
    return {
        "id": event.id,
        "at": event.at,
        "run_id": event.run_id,
        "event": event.event,
        "outcome": event.outcome,
        "message": web.clean_text(event.message),
        "changes": [FieldChange(c.field, web.clean(c.old), web.clean(c.new)) for c in changes],
        "detail": json.dumps(web.clean(detail), indent=1, sort_keys=True, default=str) if detail else "",
        "digest": event.digest,
    }


@router.get("/failed", response_class=HTMLResponse)
def failed(
    request: Request,
    web: Web,
    identity: Viewer,
    flow: FlowFilter,
    after: str | None = None,
    reason: str | None = None,
) -> HTMLResponse:
    reason = reason if reason in LABELS else None
    result = queries.failed_queue(web.store, flow=flow, after=to_int(after), limit=PAGE_SIZE, reason=reason)
    return web.page(
        request,
        "failed.html",
        identity,
        rows=[(r, web.clean_text(r.last_error)) for r in result.rows],
        next_after=result.next_after,
        flow=flow,
        reason=reason,
        reason_label=label(reason) if reason else None,
    )


@router.get("/failed/reasons", response_class=HTMLResponse)
def failed_reasons(request: Request, web: Web, identity: Viewer, flow: FlowFilter) -> HTMLResponse:
    """The failed queue grouped by flow and reason: counts, the values behind them, the fix, a link to the records."""
    groups = [
        {
            "flow": g.flow,
            "reason": g.reason,
            "label": label(g.reason),
            "count": g.count,
            "values": [(web.clean_text(v) if v else "(no value)", n) for v, n in g.values[:REASON_VALUES]],
            "more_values": max(0, len(g.values) - REASON_VALUES),
            "fix": web.clean_text(fix_for(web.config.flows, g.flow, g.reason, (v for v, _ in g.values))),
        }
        for g in web.store.records.failure_groups(flow)
    ]
    return web.page(request, "failed_reasons.html", identity, groups=groups, flow=flow)
