"""Jira REST handlers for webhooks (dynamic and admin) and the OAuth 2.0 (3LO) endpoints."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse

from ml_connector.sim.jira.common import ApiError
from ml_connector.sim.jira.routes import Ctx, int_param, route


@route("POST", "/rest/api/{v}/webhook")
def webhook_register(ctx: Ctx) -> Any:
    return ctx.sim.register_webhooks(ctx.body, ctx.principal)


@route("GET", "/rest/api/{v}/webhook")
def webhook_list(ctx: Ctx) -> Any:
    return ctx.sim.list_webhooks(
        ctx.principal, int_param(ctx.params, "startAt", 0), int_param(ctx.params, "maxResults", 100)
    )


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
    size = int_param(ctx.params, "maxResults", 100)
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
