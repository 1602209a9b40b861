"""The ``/_sim/`` control API: reset, faults, clock, points quota, request log, deliveries, index flush, and issues
as a person."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ml_connector.sim.jira.common import ApiError
from ml_connector.sim.jira.core import JiraSim
from ml_connector.sim.jira.options import JiraSimOptions
from ml_connector.sim.jira.routes import error_response, read_body, render


async def control(sim: JiraSim, request: Request) -> Response:
    try:
        body = await read_body(request)
        return render(_control_sync(sim, request, body))
    except ApiError as exc:
        return error_response(exc)
    except ValidationError as exc:  # a bad fault or reset value is the caller's mistake, not a crash
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error_response(ApiError(400, errors))


def _actor(sim: JiraSim, body: Any) -> str:
    who = body.get("as") if isinstance(body, dict) else None
    if not who:
        return sim.me.account_id
    for user in sim.users:
        if who in (user.email, user.account_id):
            return user.account_id
    raise ApiError(400, [f"Unknown user '{who}'."])


def _quota(sim: JiraSim, method: str, body: Any) -> Any:
    """GET: the points pools now; PUT ``{"spend_global": n}``: other tenants use ``n`` points of the app's pool."""
    with sim.lock:
        if method == "PUT":
            sim.quota.spend_elsewhere(int((body or {}).get("spend_global", 0)))
        return sim.quota.state()


def _control_sync(sim: JiraSim, request: Request, body: Any) -> Any:
    method, parts = request.method, request.url.path.strip("/").split("/")[1:]
    params = request.query_params
    if parts == ["reset"] and method == "POST":
        merged = sim.options.model_dump() | (body or {})
        sim.reset(JiraSimOptions.model_validate(merged))
        return {"ok": True}
    if parts == ["faults"]:
        if method == "PUT":
            return sim.set_faults(body or {}).model_dump()
        return sim.faults.model_dump()
    if parts == ["clock"]:
        if method == "PUT":
            if "advance_seconds" in (body or {}):
                sim.advance_clock(float(body["advance_seconds"]))
            else:
                sim.set_clock(float((body or {}).get("offset_seconds", 0)))
        return {"offset_seconds": sim.clock_offset, "now": sim.now().isoformat()}
    if parts == ["quota"]:
        return _quota(sim, method, body)
    if parts == ["requests"]:
        if method == "DELETE":
            sim.clear_requests()
            return 204, None
        if method == "PUT":
            sim.record_exchanges(bool((body or {}).get("record_exchanges")))
        return sim.request_log()
    if parts == ["webhook-deliveries"]:
        with sim.lock:
            return {"deliveries": list(sim.deliveries)}
    if parts == ["oauth", "revoke"] and method == "POST":
        return {"revoked": sim.oauth.revoke_all()}
    if parts == ["index", "flush"] and method == "POST":
        sim.flush_index()
        return {"ok": True}
    if parts and parts[0] == "issues":
        if len(parts) == 1:
            if method == "POST":
                specs = (body or {}).get("issues", [])
                issues = sim.seed_issues(specs, _actor(sim, body))
                return 201, {"issues": [{"id": str(i.id), "key": i.key} for i in issues]}
            return {"issues": sim.list_raw(params.get("project"))}
        key = parts[1]
        if len(parts) == 2:
            if method == "GET":
                with sim.lock:
                    return sim.raw_issue(sim.get_issue(key))
            if method == "PUT":
                fields = (body or {}).get("fields", {})
                issue = sim.edit_issue(key, {"fields": fields}, _actor(sim, body), check_rate=False)
                with sim.lock:
                    return sim.raw_issue(issue)
            if method == "DELETE":
                sim.delete_issue(key, _actor(sim, body), check_rate=False)
                return 204, None
        if len(parts) == 3 and parts[2] == "transition" and method == "POST":
            issue = sim.transition_to_status(key, str((body or {}).get("status", "")), _actor(sim, body))
            with sim.lock:
                return sim.raw_issue(issue)
        if len(parts) == 3 and parts[2] == "move" and method == "POST":
            target = str((body or {}).get("project", ""))
            issue = sim.move_issue(key, target, (body or {}).get("issuetype"), _actor(sim, body))
            with sim.lock:
                return sim.raw_issue(issue)
    raise ApiError(404, [f"Unknown control endpoint {method} {request.url.path}"])
