"""HTTP face of the simulator: routing, auth, faults, rate limits and the request log around ``JiraSim``.

One catch-all Starlette route with an explicit route table: the same table serves the site root and the
``/ex/jira/{cloudId}`` prefix, and the matched template doubles as the request-log endpoint name.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ml_connector.sim import wire
from ml_connector.sim.jira import seed
from ml_connector.sim.jira.adf import adf_text
from ml_connector.sim.jira.common import ApiError, Principal, basic_credentials, offset_page
from ml_connector.sim.jira.core import JiraSim
from ml_connector.sim.jira.options import FailRule, Faults, JiraSimOptions

GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


@dataclass
class Ctx:
    sim: JiraSim
    request: Request
    params: QueryParams
    path: dict[str, str]
    body: Any
    principal: Principal
    version: str  # "2" or "3"


Handler = Callable[[Ctx], Any]


@dataclass
class RouteDef:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    anonymous: bool = False


ROUTES: list[RouteDef] = []


def route(method: str, template: str, *, anonymous: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for version in ("3", "2") if "/rest/api/{v}" in template else ("",):
            concrete = template.replace("{v}", version)
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", concrete)
            ROUTES.append(RouteDef(method, concrete, re.compile(f"^{pattern}$"), fn, anonymous))
        return fn

    return register


def _json_body(ctx: Ctx) -> Any:
    return ctx.body


def _int(params: QueryParams, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, [f"The value '{raw}' is not a valid integer for the '{name}' parameter."]) from exc


def _list_param(values: list[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _v2_in(ctx: Ctx, payload: Any) -> Any:
    """API v2 takes wiki-markup strings for description; store them as ADF like Jira's v2 → v3 conversion."""
    if ctx.version != "2" or not isinstance(payload, dict):
        return payload
    fields = payload.get("fields")
    if isinstance(fields, dict) and isinstance(fields.get("description"), str):
        text = fields["description"]
        fields = dict(fields)
        fields["description"] = (
            {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": t}]} for t in text.split("\n") if t
                ],
            }
            if text
            else None
        )
        payload = {**payload, "fields": fields}
    return payload


def _v2_out(ctx: Ctx, issue_json: dict[str, Any]) -> dict[str, Any]:
    if ctx.version == "2" and isinstance(issue_json.get("fields"), dict) and "description" in issue_json["fields"]:
        desc = issue_json["fields"]["description"]
        issue_json["fields"]["description"] = adf_text(desc) if desc else None
    return issue_json


# ------------------------------------------------------------------------------------------------ Jira REST
@route("GET", "/rest/api/{v}/serverInfo", anonymous=True)
def server_info(ctx: Ctx) -> Any:
    now = ctx.sim.now()
    return {
        "baseUrl": ctx.sim.base_url,
        "displayUrl": ctx.sim.base_url,
        "version": "1001.0.0-SNAPSHOT",
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": 100289,
        # RFC 3339 (with a colon in the offset) as the document's date-time format requires.
        "buildDate": "2025-11-28T00:00:00.000+00:00",
        "serverTime": now.astimezone(ctx.sim.tz).isoformat(timespec="milliseconds"),
        "scmInfo": "ml-connector-sim",
        "serverTitle": "Jira",
        "serverTimeZone": ctx.sim.options.time_zone,
    }


@route("GET", "/rest/api/{v}/myself")
def myself(ctx: Ctx) -> Any:
    user = ctx.sim.user_json(ctx.principal.account_id, full=True)
    assert user is not None
    user["emailAddress"] = ctx.sim.me.email  # one's own email is always visible
    user["groups"] = {"size": 2, "items": []}
    user["applicationRoles"] = {"size": 1, "items": []}
    return user


@route("GET", "/rest/api/{v}/field")
def fields(ctx: Ctx) -> Any:
    return ctx.sim.fields_json()


@route("GET", "/rest/api/{v}/priority")
def priorities(ctx: Ctx) -> Any:
    return [ctx.sim.priority_json(p[0]) for p in seed.PRIORITIES]


@route("GET", "/rest/api/{v}/priority/search")
def priority_search(ctx: Ctx) -> Any:
    start, size = _int(ctx.params, "startAt", 0), _int(ctx.params, "maxResults", 50)
    return offset_page([p[0] for p in seed.PRIORITIES], start, size, ctx.sim.priority_json)


@route("GET", "/rest/api/{v}/priority/{id}")
def priority_get(ctx: Ctx) -> Any:
    if not any(p[0] == ctx.path["id"] for p in seed.PRIORITIES):
        raise ApiError(404, [f"The priority with ID '{ctx.path['id']}' does not exist."])
    return ctx.sim.priority_json(ctx.path["id"])


@route("GET", "/rest/api/{v}/project/search")
def project_search(ctx: Ctx) -> Any:
    keys = set(ctx.params.getlist("keys"))
    query = (ctx.params.get("query") or "").lower()
    expand = "issueTypes" in (ctx.params.get("expand") or "")
    start, size = _int(ctx.params, "startAt", 0), min(_int(ctx.params, "maxResults", 50), 100)
    matches = [
        p
        for p in seed.PROJECTS.values()
        if (not keys or p.key in keys or p.id in keys)
        and (not query or query in p.key.lower() or query in p.name.lower())
    ]
    return {
        "self": f"{ctx.sim.base_url}/rest/api/3/project/search",
        **offset_page(matches, start, size, lambda p: ctx.sim.project_json(p, expand=expand)),
    }


@route("GET", "/rest/api/{v}/project/{projectIdOrKey}")
def project_get(ctx: Ctx) -> Any:
    return ctx.sim.project_json(ctx.sim.project(ctx.path["projectIdOrKey"]), expand=True)


@route("GET", "/rest/api/{v}/project/{projectIdOrKey}/statuses")
def project_statuses(ctx: Ctx) -> Any:
    project = ctx.sim.project(ctx.path["projectIdOrKey"])
    return [
        {
            "self": f"{ctx.sim.base_url}/rest/api/3/issuetype/{t}",
            "id": t,
            "name": seed.ISSUE_TYPES[t].name,
            "subtask": False,
            "statuses": [ctx.sim.status_json(s) for s in project.workflow.statuses],
        }
        for t in project.issue_types
    ]


@route("GET", "/rest/api/{v}/issue/createmeta/{projectIdOrKey}/issuetypes")
def createmeta_types(ctx: Ctx) -> Any:
    project = ctx.sim.project(ctx.path["projectIdOrKey"])
    start, size = _int(ctx.params, "startAt", 0), min(_int(ctx.params, "maxResults", 50), 200)
    types = [ctx.sim.issuetype_json(seed.ISSUE_TYPES[t]) for t in project.issue_types]
    return {"issueTypes": types[start : start + size], "maxResults": size, "startAt": start, "total": len(types)}


@route("GET", "/rest/api/{v}/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}")
def createmeta_fields(ctx: Ctx) -> Any:
    all_fields = ctx.sim.createmeta_fields(ctx.path["projectIdOrKey"], ctx.path["issueTypeId"])
    start, size = _int(ctx.params, "startAt", 0), min(_int(ctx.params, "maxResults", 50), 200)
    page = all_fields[start : start + size]
    return {"fields": page, "results": page, "maxResults": size, "startAt": start, "total": len(all_fields)}


def _users_page(ctx: Ctx, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start, size = _int(ctx.params, "startAt", 0), min(_int(ctx.params, "maxResults", 50), 1000)
    return users[start : start + size]


@route("GET", "/rest/api/{v}/user/search")
def user_search(ctx: Ctx) -> Any:
    query, account = ctx.params.get("query"), ctx.params.get("accountId")
    if ctx.params.get("username"):
        raise ApiError(400, ["The username query parameter is not supported in GDPR strict mode."])
    if not query and not account and not ctx.params.get("property"):
        raise ApiError(400, ["One of 'query', 'accountId' or 'property' query parameters must be provided."])
    return _users_page(ctx, ctx.sim.find_users(query, account))


@route("GET", "/rest/api/{v}/user/assignable/search")
def user_assignable(ctx: Ctx) -> Any:
    if not ctx.params.get("project") and not ctx.params.get("issueKey"):
        raise ApiError(400, ["A project or issue key must be provided."])
    if ctx.params.get("project"):
        ctx.sim.project(ctx.params["project"])
    return _users_page(ctx, ctx.sim.find_users(ctx.params.get("query") or None, ctx.params.get("accountId")))


@route("GET", "/rest/api/{v}/user")
def user_get(ctx: Ctx) -> Any:
    user = ctx.sim.user_json(ctx.params.get("accountId"), full=True)
    if user is None:
        raise ApiError(404, ["Specified user does not exist or you do not have required permissions"])
    return user


@route("POST", "/rest/api/{v}/issue")
def issue_create(ctx: Ctx) -> Any:
    issue = ctx.sim.create_issue(_v2_in(ctx, ctx.body), ctx.principal.account_id)
    return 201, ctx.sim.created_json(issue)


@route("POST", "/rest/api/{v}/issue/bulk")
def issue_bulk(ctx: Ctx) -> Any:
    body = ctx.body
    if isinstance(body, dict) and isinstance(body.get("issueUpdates"), list):
        body = {**body, "issueUpdates": [_v2_in(ctx, u) for u in body["issueUpdates"]]}
    return ctx.sim.bulk_create(body, ctx.principal.account_id)


def _fields_param(ctx: Ctx, default: list[str] | None) -> list[str] | None:
    raw = ctx.params.getlist("fields")
    return _list_param(raw) if raw else default


@route("GET", "/rest/api/{v}/issue/{issueIdOrKey}")
def issue_get(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        issue = ctx.sim.get_issue(ctx.path["issueIdOrKey"])
        fields = _fields_param(ctx, None)
        if fields == ["*all"]:
            fields = None
        props = _list_param(ctx.params.getlist("properties"))
        return _v2_out(
            ctx, ctx.sim.issue_json(issue, fields=fields, expand=ctx.params.get("expand", ""), properties=props)
        )


@route("PUT", "/rest/api/{v}/issue/{issueIdOrKey}")
def issue_edit(ctx: Ctx) -> Any:
    issue = ctx.sim.edit_issue(ctx.path["issueIdOrKey"], _v2_in(ctx, ctx.body), ctx.principal.account_id)
    if ctx.params.get("returnIssue") == "true":
        with ctx.sim.lock:
            return 200, _v2_out(ctx, ctx.sim.issue_json(issue, expand=ctx.params.get("expand", "")))
    return 204, None


@route("DELETE", "/rest/api/{v}/issue/{issueIdOrKey}")
def issue_delete(ctx: Ctx) -> Any:
    ctx.sim.delete_issue(ctx.path["issueIdOrKey"], ctx.principal.account_id)
    return 204, None


@route("GET", "/rest/api/{v}/issue/{issueIdOrKey}/properties")
def properties_list(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        issue = ctx.sim.get_issue(ctx.path["issueIdOrKey"])
        base = f"{ctx.sim.base_url}/rest/api/3/issue/{issue.id}/properties"
        return {"keys": [{"key": k, "self": f"{base}/{k}"} for k in issue.properties]}


@route("GET", "/rest/api/{v}/issue/{issueIdOrKey}/properties/{propertyKey}")
def property_get(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        issue = ctx.sim.get_issue(ctx.path["issueIdOrKey"])
        key = ctx.path["propertyKey"]
        if key not in issue.properties:
            raise ApiError(404, [f"The property with key '{key}' does not exist."])
        return {"key": key, "value": issue.properties[key]}


@route("PUT", "/rest/api/{v}/issue/{issueIdOrKey}/properties/{propertyKey}")
def property_put(ctx: Ctx) -> Any:
    if ctx.body is None:
        raise ApiError(400, ["The property value must not be empty."])
    created = ctx.sim.set_property(ctx.path["issueIdOrKey"], ctx.path["propertyKey"], ctx.body)
    return (201 if created else 200), {}


@route("DELETE", "/rest/api/{v}/issue/{issueIdOrKey}/properties/{propertyKey}")
def property_delete(ctx: Ctx) -> Any:
    ctx.sim.delete_property(ctx.path["issueIdOrKey"], ctx.path["propertyKey"])
    return 204, None


@route("GET", "/rest/api/{v}/issue/{issueIdOrKey}/transitions")
def transitions_get(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        issue = ctx.sim.get_issue(ctx.path["issueIdOrKey"])
        with_fields = "transitions.fields" in (ctx.params.get("expand") or "")
        items = ctx.sim.transitions_json(issue, with_fields=with_fields)
        if ctx.params.get("transitionId"):
            items = [t for t in items if t["id"] == ctx.params["transitionId"]]
        return {"expand": "transitions", "transitions": items}


@route("POST", "/rest/api/{v}/issue/{issueIdOrKey}/transitions")
def transitions_post(ctx: Ctx) -> Any:
    ctx.sim.do_transition(ctx.path["issueIdOrKey"], ctx.body, ctx.principal.account_id)
    return 204, None


def _search(ctx: Ctx, args: dict[str, Any]) -> Any:
    jql = args.get("jql")
    if not isinstance(jql, str):
        jql = ""
    token = args.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise ApiError(400, ["nextPageToken must be a string."])
    try:
        max_results = int(args.get("maxResults", 50))
    except (TypeError, ValueError) as exc:
        raise ApiError(400, ["maxResults must be an integer."]) from exc
    fields_raw = args.get("fields")
    fields: list[str] | None
    if fields_raw is None:
        fields = ["id"]
    else:
        fields = _list_param(fields_raw if isinstance(fields_raw, list) else [str(fields_raw)]) or ["id"]
        if "*all" in fields or "*navigable" in fields:
            fields = [f for f in fields if f.startswith("-")] + ["*all"]
    props = args.get("properties") or []
    props = _list_param(props if isinstance(props, list) else [str(props)])
    if len(props) > 5:
        raise ApiError(400, ["A maximum of 5 issue property keys can be specified."])
    reconcile_raw = args.get("reconcileIssues") or []
    reconcile = [int(x) for x in _list_param([str(r) for r in reconcile_raw]) if str(x).isdigit()]
    expand = args.get("expand") or ""
    if isinstance(expand, list):
        expand = ",".join(expand)
    result = ctx.sim.search(
        jql=jql,
        next_page_token=token or None,
        max_results=max_results,
        fields=fields,
        expand=str(expand),
        properties=props,
        reconcile=reconcile,
        principal=ctx.principal,
    )
    result["issues"] = [_v2_out(ctx, i) for i in result["issues"]]
    return result


@route("GET", "/rest/api/{v}/search/jql")
def search_get(ctx: Ctx) -> Any:
    p = ctx.params
    args: dict[str, Any] = {k: p.get(k) for k in ("jql", "nextPageToken", "expand") if p.get(k) is not None}
    if p.get("maxResults") is not None:
        args["maxResults"] = p["maxResults"]
    if p.getlist("fields"):
        args["fields"] = p.getlist("fields")
    args["properties"] = p.getlist("properties")
    args["reconcileIssues"] = p.getlist("reconcileIssues")
    return _search(ctx, args)


@route("POST", "/rest/api/{v}/search/jql")
def search_post(ctx: Ctx) -> Any:
    if not isinstance(ctx.body, dict):
        raise ApiError(400, ["The request body must be a JSON object."])
    return _search(ctx, ctx.body)


@route("POST", "/rest/api/{v}/search/approximate-count")
def approximate_count(ctx: Ctx) -> Any:
    jql = ctx.body.get("jql") if isinstance(ctx.body, dict) else None
    return {"count": ctx.sim.approximate_count(str(jql or ""), ctx.principal)}


@route("GET", "/rest/api/{v}/search")
def search_removed_get(ctx: Ctx) -> Any:
    raise ApiError(410, [GONE])


@route("POST", "/rest/api/{v}/search")
def search_removed_post(ctx: Ctx) -> Any:
    raise ApiError(410, [GONE])


@route("POST", "/rest/api/{v}/webhook")
def webhook_register(ctx: Ctx) -> Any:
    return ctx.sim.register_webhooks(ctx.body, ctx.principal)


@route("GET", "/rest/api/{v}/webhook")
def webhook_list(ctx: Ctx) -> Any:
    return ctx.sim.list_webhooks(ctx.principal, _int(ctx.params, "startAt", 0), _int(ctx.params, "maxResults", 100))


@route("DELETE", "/rest/api/{v}/webhook")
def webhook_delete(ctx: Ctx) -> Any:
    ids = ctx.body.get("webhookIds") if isinstance(ctx.body, dict) else None
    ctx.sim.delete_webhooks(ids, ctx.principal)
    return 202, None


@route("PUT", "/rest/api/{v}/webhook/refresh")
def webhook_refresh(ctx: Ctx) -> Any:
    ids = ctx.body.get("webhookIds") if isinstance(ctx.body, dict) else None
    return ctx.sim.refresh_webhooks(ids, ctx.principal)


@route("GET", "/rest/api/{v}/webhook/failed")
def webhook_failed(ctx: Ctx) -> Any:
    if ctx.principal.client_id is None:
        raise ApiError(403, ["Only Connect and OAuth 2.0 apps can use this operation."])
    with ctx.sim.lock:
        failed = [d for d in ctx.sim.deliveries if d["kind"] == "dynamic" and not (200 <= (d["status"] or 0) < 300)]
    size = _int(ctx.params, "maxResults", 100)
    return {
        "values": [
            {"id": d["identifier"], "body": "", "url": d["url"], "failureTime": int(d["time"] * 1000)}
            for d in failed[:size]
        ],
        "maxResults": size,
    }


@route("POST", "/rest/webhooks/1.0/webhook")
def admin_webhook_register(ctx: Ctx) -> Any:
    hook = ctx.sim.register_admin_webhook(ctx.body)
    return 201, ctx.sim.admin_webhook_json(hook)


@route("GET", "/rest/webhooks/1.0/webhook")
def admin_webhook_list(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        return [ctx.sim.admin_webhook_json(h) for h in ctx.sim.admin_webhooks.values()]


@route("GET", "/rest/webhooks/1.0/webhook/{id}")
def admin_webhook_get(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        hook = ctx.sim.admin_webhooks.get(int(ctx.path["id"])) if ctx.path["id"].isdigit() else None
        if hook is None:
            raise ApiError(404, ["Webhook not found."])
        return ctx.sim.admin_webhook_json(hook)


@route("DELETE", "/rest/webhooks/1.0/webhook/{id}")
def admin_webhook_delete(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        if not ctx.path["id"].isdigit() or ctx.sim.admin_webhooks.pop(int(ctx.path["id"]), None) is None:
            raise ApiError(404, ["Webhook not found."])
    return 204, None


# ------------------------------------------------------------------------------------------------ OAuth
@route("GET", "/authorize", anonymous=True)
def oauth_authorize(ctx: Ctx) -> Any:
    return RedirectResponse(ctx.sim.oauth_authorize(dict(ctx.params)), status_code=302)


@route("POST", "/oauth/token", anonymous=True)
def oauth_token(ctx: Ctx) -> Any:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    return ctx.sim.oauth_token(body)


@route("GET", "/oauth/token/accessible-resources", anonymous=True)
def accessible_resources(ctx: Ctx) -> Any:
    header = ctx.request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else ""
    return ctx.sim.accessible_resources(ctx.sim.base_url, token)


_OAUTH_PATHS = {"/authorize", "/oauth/token", "/oauth/token/accessible-resources"}


# ------------------------------------------------------------------------------------------------ dispatch
def _match(method: str, path: str) -> tuple[RouteDef | None, dict[str, str], bool]:
    path_exists = False
    for r in ROUTES:
        m = r.regex.match(path)
        if m:
            path_exists = True
            if r.method == method:
                return r, m.groupdict(), True
    return None, {}, path_exists


def _error(exc: ApiError) -> Response:
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def _unauthorized() -> Response:
    return JSONResponse(
        {
            "errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
            "errors": {},
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="protected-area", OAuth realm="https://api.atlassian.com"'},
    )


def _render(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status = 200
    if isinstance(result, tuple):
        status, result = result
    if result is None:
        return Response(status_code=status)
    return JSONResponse(result, status_code=status)


async def _read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(raw.decode()))
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, [f"Unexpected character in the request body: {exc.msg} at position {exc.pos}."]) from exc
    except UnicodeDecodeError as exc:
        raise ApiError(400, ["The request body is not valid UTF-8."]) from exc


def _authenticate(sim: JiraSim, request: Request, prefixed: bool) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme = header.split(" ", 1)[0].lower()
    if scheme == "bearer":
        return sim.bearer_principal(header[7:].strip())
    if scheme == "basic" and not prefixed:
        creds = basic_credentials(header)
        return sim.basic_principal(*creds) if creds else None
    return None


async def _dispatch(request: Request) -> Response:
    sim: JiraSim = request.app.state.sim
    path = request.url.path
    if path.startswith("/_sim/") or path == "/_sim":
        return await _control(sim, request)
    method = request.method
    prefix = ""
    m = re.match(r"^/ex/jira/([^/]+)(/.*)$", path)
    if m:
        if m.group(1) != sim.options.cloud_id:
            return JSONResponse({"code": 404, "message": "Not Found"}, status_code=404)
        prefix, path = path[: m.start(2)], m.group(2)
    sim.base_url = str(request.base_url).rstrip("/") + prefix
    route_def, path_params, path_exists = _match(method, path)
    # Log under the route template with every parameter collapsed to {id}, so counts group per endpoint.
    template = re.sub(r"\{\w+\}", "{id}", route_def.template) if route_def else path
    auth = "none"
    header = request.headers.get("authorization", "").split(" ", 1)[0].lower()
    if header in ("basic", "bearer"):
        auth = header
    response = await _handle(sim, request, route_def, path_params, path_exists, bool(prefix), path)
    if sim.faults.latency_ms:
        # The other half of the round trip: the answer travels back after the work is done, so a client can die
        # after Jira acted and before it heard about it, as over a real network.
        await asyncio.sleep(sim.faults.latency_ms / 2000)
    status = 0 if request.scope.get(_FAULT) == "drop_before" else response.status_code
    sim.log_request(method, request.url.path, template, request.url.query, status, auth)
    return response


async def _handle(
    sim: JiraSim,
    request: Request,
    route_def: RouteDef | None,
    path_params: dict[str, str],
    path_exists: bool,
    prefixed: bool,
    path: str,
) -> Response:
    faults = sim.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 2000)
    if route_def is None:
        if path_exists:
            return JSONResponse({"errorMessages": ["Method Not Allowed"], "errors": {}}, status_code=405)
        return JSONResponse({"errorMessages": ["Not Found"], "errors": {}}, status_code=404)
    principal: Principal | None = None
    if route_def.template not in _OAUTH_PATHS:
        principal = _authenticate(sim, request, prefixed)
        if principal is None and not route_def.anonymous:
            return _unauthorized()
    try:
        rule = _inject_faults(sim, request, route_def)
        if rule is not None:
            early = await _wire_fault(rule, request)
            if early is not None:
                return early
        body = await _read_body(request)
        ctx = Ctx(
            sim=sim,
            request=request,
            params=request.query_params,
            path=path_params,
            body=body,
            principal=principal or Principal(sim.me.account_id, "none"),
            version="2" if "/rest/api/2/" in route_def.template else "3",
        )
        return _render(route_def.handler(ctx))
    except ApiError as exc:
        return _error(exc)


def _inject_faults(sim: JiraSim, request: Request, route_def: RouteDef) -> FailRule | None:
    """Raise the scripted status or random 5xx, or check the burst limit; a wire-level fault rule is returned."""
    with sim.lock:
        faults = sim.faults
        for rule in faults.fail_next:
            if rule.count > 0 and rule.matches(request.method, request.url.path):
                rule.count -= 1
                if rule.kind != "status":
                    faults.fail_next = [r for r in faults.fail_next if r.count > 0]
                    return rule
                headers: dict[str, str] = {}
                if rule.retry_after is not None:
                    headers["Retry-After"] = (
                        str(int(rule.retry_after)) if rule.retry_after.is_integer() else str(rule.retry_after)
                    )
                if rule.status == 429:
                    if faults.retry_after_seconds is not None:
                        headers.setdefault("Retry-After", str(int(faults.retry_after_seconds)))
                    headers["RateLimit-Reason"] = rule.reason
                faults.fail_next = [r for r in faults.fail_next if r.count > 0]
                raise ApiError(rule.status, [f"Injected failure ({rule.status})."], headers=headers)
        if faults.error_5xx_rate and sim.rng.random() < faults.error_5xx_rate:
            raise ApiError(503, ["Service Unavailable"], headers={"Retry-After": "1"})
        if route_def.template not in _OAUTH_PATHS:
            sim.check_burst(f"{request.method} {route_def.template}")
    return None


_RAW_SEND = "mlc.sim.raw_send"  # scope keys: uvicorn's own send, and the wire fault to apply to the response
_FAULT = "mlc.sim.fault"


async def _wire_fault(rule: FailRule, request: Request) -> Response | None:
    """A response that replaces the handler's (html, or a placeholder for a drop), or None to run the handler."""
    if rule.kind == "html":
        return wire.html_page()
    if rule.kind == "hang":
        if await wire.hang(rule.hang_seconds, request.scope[_RAW_SEND]):
            return None
        request.scope[_FAULT] = "drop_before"  # the client gave up; nobody is left to answer
        return Response(status_code=204)
    request.scope[_FAULT] = rule.kind
    return Response(status_code=204) if rule.kind == "drop_before" else None


class JiraSimApp(Starlette):
    """Starlette that can hold a response back and drop or cut it (the wire faults of ``sim.wire``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope[_RAW_SEND] = send
        held = wire.HeldResponse()

        async def guarded(message: Message) -> None:
            if scope.get(_FAULT) in wire.HELD_KINDS:
                await held(message)
            else:
                await send(message)

        await super().__call__(scope, receive, guarded)
        kind = scope.get(_FAULT)
        if kind in wire.HELD_KINDS:
            await wire.deliver(kind, held, send)


# ------------------------------------------------------------------------------------------------ control API
async def _control(sim: JiraSim, request: Request) -> Response:
    try:
        body = await _read_body(request)
        return _render(_control_sync(sim, request, body))
    except ApiError as exc:
        return _error(exc)


def _actor(sim: JiraSim, body: Any) -> str:
    who = body.get("as") if isinstance(body, dict) else None
    if not who:
        return sim.me.account_id
    for user in sim.users:
        if who in (user.email, user.account_id):
            return user.account_id
    raise ApiError(400, [f"Unknown user '{who}'."])


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
    if parts == ["requests"]:
        if method == "DELETE":
            sim.clear_requests()
            return 204, None
        return sim.request_log()
    if parts == ["webhook-deliveries"]:
        with sim.lock:
            return {"deliveries": list(sim.deliveries)}
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


# ------------------------------------------------------------------------------------------------ factory
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def create_app(options: JiraSimOptions | None = None) -> Starlette:
    """A fresh simulated site; ``app.state.sim`` is the ``JiraSim`` for in-process control."""
    sim = JiraSim(options)

    async def lifespan(app: Starlette) -> Any:
        yield
        sim.close()

    from contextlib import asynccontextmanager

    app = JiraSimApp(
        routes=[Route("/{path:path}", _dispatch, methods=_METHODS)],
        lifespan=asynccontextmanager(lifespan),
    )
    app.state.sim = sim
    return app


__all__ = ["Faults", "JiraSimOptions", "create_app"]
