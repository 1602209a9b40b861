"""Dashboard actions (POST): sign in and out, replay the failed queue, and Sync now / Pause / Resume a flow.

Every action but sign-in goes through ``checked_form`` (origin, role, CSRF); sign-in checks the origin too (login
CSRF) and is throttled per source address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ml_connector.engine import requeue_failed, requeue_records
from ml_connector.store import Store
from ml_connector.web.auth import SESSION_COOKIE, SESSION_TTL
from ml_connector.web.context import (
    AdminForm,
    SignedInForm,
    Web,
    WebContext,
    client_host,
    here,
    safe_next,
    to_int,
)
from ml_connector.web.guard import Form, effective_scheme, parse_form, retry_after

log = structlog.get_logger("ml_connector.web")

MAX_REPLAY_IDS = 1000
FLOW_ACTIONS = {"sync": "Sync of {} requested.", "pause": "{} paused.", "resume": "{} resumed."}

router = APIRouter()


@router.post("/login")
async def login(request: Request, web: Web) -> Response:
    if not web.auth.token_required:
        return RedirectResponse(here(request, "/"), status_code=303)
    web.check_origin(request, bearer=False)  # login CSRF: a foreign page must not sign a browser in
    source = client_host(request) or "unknown"
    wait = web.throttle.locked_for(source)
    if wait > 0:
        log.warning("web.login_throttled", client=source, retry_after=retry_after(wait))
        return PlainTextResponse(
            "too many failed sign-ins from this address; try again later",
            status_code=429,
            headers={"Retry-After": retry_after(wait)},
        )
    form = Form(parse_form(await request.body()))
    candidate = form.get("token")
    target = safe_next(form.get("next") or "/")
    role = web.auth.role_of_token(candidate) if candidate else None
    if role is None:
        failures = web.throttle.failed(source)
        log.warning("web.login_failed", client=source, failures=failures)
        context = {"next": target, "error": "That token is not valid."}
        return web.templates.TemplateResponse(request, "login.html", context, status_code=401)
    web.throttle.succeeded(source)
    log.info("web.login", client=source, role=role)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        web.auth.new_session(role),
        max_age=SESSION_TTL,
        httponly=True,
        samesite="strict",
        secure=effective_scheme(request.scope, tls_proxy=web.config.web.tls_proxy) == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, web: Web, _checked: SignedInForm) -> Response:
    response = RedirectResponse(here(request, "/login" if web.auth.token_required else "/"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/failed/replay")
async def replay(request: Request, web: Web, checked: AdminForm) -> Response:
    _, form = checked
    ids = [i for i in (to_int(v) for v in form.getlist("record_id")) if i is not None]
    flow = web.known_flow(form.get("flow"))
    replay_all = form.get("all") == "1"
    if not ids and not replay_all:
        return RedirectResponse(
            here(request, "/failed?") + urlencode({"msg": "Nothing selected to replay."}), status_code=303
        )
    queued = await run_in_threadpool(requeue, web.store, ids, flow, replay_all)
    web.flow_counts.clear()
    flows = sorted(queued)
    if flows:
        web.work.replay(flows)
    total = sum(queued.values())
    log.info("web.replay_requested", records=total, flows=flows)
    message = f"Re-queued {total} record(s); replay running in the background." if total else "Nothing to replay."
    target = form.get("return_to")
    back = safe_next(target) if target else here(request, "/failed")
    sep = "&" if "?" in back else "?"
    return RedirectResponse(back + sep + urlencode({"msg": message}), status_code=303)


def requeue(store: Store, ids: list[int], flow: str | None, replay_all: bool) -> dict[str, int]:
    """Re-queue the selected failed records (the engine's replay, as the CLI's); returns flow → count."""
    rows = requeue_failed(store, flow=flow) if replay_all else requeue_records(store, ids[:MAX_REPLAY_IDS])
    return dict(Counter(row.flow for row in rows))


@router.post("/flows/{name}/{action}")
async def flow_action(request: Request, web: Web, _checked: AdminForm, name: str, action: str) -> Response:
    if name not in web.flow_names or action not in FLOW_ACTIONS:
        return PlainTextResponse("unknown flow or action", status_code=404)
    await run_in_threadpool(_handler(web, action), name)
    log.info("web.flow_action", flow=name, action=action)
    return RedirectResponse(
        here(request, "/?") + urlencode({"msg": FLOW_ACTIONS[action].format(name)}), status_code=303
    )


def _handler(web: WebContext, action: str) -> Callable[[str], None]:
    control = web.control
    return {"sync": control.sync_now, "pause": control.pause, "resume": control.resume}[action]
