"""Jira REST API v2/v3 handlers: server info, reference data, users, issues, properties, transitions, search."""

from __future__ import annotations

from typing import Any

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.common import ApiError, offset_page
from ml_connector.sim.jira.routes import Ctx, int_param, list_param, route, v2_in, v2_out

GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


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
    start, size = int_param(ctx.params, "startAt", 0), int_param(ctx.params, "maxResults", 50)
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
    start, size = int_param(ctx.params, "startAt", 0), min(int_param(ctx.params, "maxResults", 50), 100)
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
    start, size = int_param(ctx.params, "startAt", 0), min(int_param(ctx.params, "maxResults", 50), 200)
    types = [ctx.sim.issuetype_json(seed.ISSUE_TYPES[t]) for t in project.issue_types]
    return {"issueTypes": types[start : start + size], "maxResults": size, "startAt": start, "total": len(types)}


@route("GET", "/rest/api/{v}/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}")
def createmeta_fields(ctx: Ctx) -> Any:
    all_fields = ctx.sim.createmeta_fields(ctx.path["projectIdOrKey"], ctx.path["issueTypeId"])
    start, size = int_param(ctx.params, "startAt", 0), min(int_param(ctx.params, "maxResults", 50), 200)
    page = all_fields[start : start + size]
    return {"fields": page, "results": page, "maxResults": size, "startAt": start, "total": len(all_fields)}


def _users_page(ctx: Ctx, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start, size = int_param(ctx.params, "startAt", 0), min(int_param(ctx.params, "maxResults", 50), 1000)
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
    issue = ctx.sim.create_issue(v2_in(ctx, ctx.body), ctx.principal.account_id)
    return 201, ctx.sim.created_json(issue)


@route("POST", "/rest/api/{v}/issue/bulk")
def issue_bulk(ctx: Ctx) -> Any:
    body = ctx.body
    if isinstance(body, dict) and isinstance(body.get("issueUpdates"), list):
        body = {**body, "issueUpdates": [v2_in(ctx, u) for u in body["issueUpdates"]]}
    return ctx.sim.bulk_create(body, ctx.principal.account_id)


def _fields_param(ctx: Ctx, default: list[str] | None) -> list[str] | None:
    raw = ctx.params.getlist("fields")
    return list_param(raw) if raw else default


@route("GET", "/rest/api/{v}/issue/{issueIdOrKey}")
def issue_get(ctx: Ctx) -> Any:
    with ctx.sim.lock:
        issue = ctx.sim.get_issue(ctx.path["issueIdOrKey"])
        fields = _fields_param(ctx, None)
        if fields == ["*all"]:
            fields = None
        props = list_param(ctx.params.getlist("properties"))
        return v2_out(
            ctx, ctx.sim.issue_json(issue, fields=fields, expand=ctx.params.get("expand", ""), properties=props)
        )


@route("PUT", "/rest/api/{v}/issue/{issueIdOrKey}")
def issue_edit(ctx: Ctx) -> Any:
    issue = ctx.sim.edit_issue(ctx.path["issueIdOrKey"], v2_in(ctx, ctx.body), ctx.principal.account_id)
    if ctx.params.get("returnIssue") == "true":
        with ctx.sim.lock:
            return 200, v2_out(ctx, ctx.sim.issue_json(issue, expand=ctx.params.get("expand", "")))
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
        fields = list_param(fields_raw if isinstance(fields_raw, list) else [str(fields_raw)]) or ["id"]
        if "*all" in fields or "*navigable" in fields:
            fields = [f for f in fields if f.startswith("-")] + ["*all"]
    props = args.get("properties") or []
    props = list_param(props if isinstance(props, list) else [str(props)])
    if len(props) > 5:
        raise ApiError(400, ["A maximum of 5 issue property keys can be specified."])
    reconcile_raw = args.get("reconcileIssues") or []
    reconcile = [int(x) for x in list_param([str(r) for r in reconcile_raw]) if str(x).isdigit()]
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
    result["issues"] = [v2_out(ctx, i) for i in result["issues"]]
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
