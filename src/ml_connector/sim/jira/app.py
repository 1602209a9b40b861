"""HTTP face of the Jira simulator: dispatch, auth, injected faults, latency and the request log around ``JiraSim``.

Handlers live in ``rest`` and ``rest_hooks`` (registered in the ``routes`` table on import), the ``/_sim/`` control
API in ``control``.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ml_connector.sim import servertime, wire
from ml_connector.sim.jira import rest, rest_hooks
from ml_connector.sim.jira.common import ApiError, Principal, basic_credentials
from ml_connector.sim.jira.control import control
from ml_connector.sim.jira.core import JiraSim
from ml_connector.sim.jira.options import FailRule, Faults, JiraSimOptions
from ml_connector.sim.jira.ratelimit import points_cost
from ml_connector.sim.jira.requestlog import Exchange
from ml_connector.sim.jira.routes import (
    OAUTH_PATHS,
    Ctx,
    RouteDef,
    error_response,
    match,
    read_body,
    render,
    unauthorized,
)

_HANDLER_MODULES = (rest, rest_hooks)  # imported for their @route registrations


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
        return await control(sim, request)
    method = request.method
    received = sim.now()  # before latency and work: a request the log shows arrived while its sender lived
    prefix = ""
    m = re.match(r"^/ex/jira/([^/]+)(/.*)$", path)
    if m:
        if m.group(1) != sim.options.cloud_id:
            return JSONResponse({"code": 404, "message": "Not Found"}, status_code=404)
        prefix, path = path[: m.start(2)], m.group(2)
    sim.base_url = str(request.base_url).rstrip("/") + prefix
    route_def, path_params, path_exists = match(method, path)
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
    if sim.faults.answer_jitter_ms:
        await asyncio.sleep(sim.rng.uniform(0, sim.faults.answer_jitter_ms) / 1000)
    status = 0 if request.scope.get(_FAULT) == "drop_before" else response.status_code
    exchange = await _exchange(request, response) if sim.log.record_exchanges else None
    sim.log_request(method, request.url.path, template, request.url.query, status, auth, exchange, received)
    return response


async def _exchange(request: Request, response: Response) -> Exchange:
    """What the request log keeps when recording exchanges (the body was already read, so this is the cached one)."""
    return Exchange(
        request_headers=request.headers,
        request_body=await request.body(),
        response_headers=response.headers,
        response_body=bytes(getattr(response, "body", b"")),
    )


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
    if route_def.template not in OAUTH_PATHS:
        principal = _authenticate(sim, request, prefixed)
        if principal is None and not route_def.anonymous:
            return unauthorized()
    charged = prefixed and principal is not None and principal.auth == "bearer"  # OAuth pays points; Basic not
    try:
        if charged:
            with sim.lock:
                sim.quota.admit()
    except ApiError as exc:
        return error_response(exc)
    try:
        rule = _inject_faults(sim, request, route_def)
        if rule is not None:
            early = await _wire_fault(rule, request)
            if early is not None:
                return early
        body = await read_body(request)
        ctx = Ctx(
            sim=sim,
            request=request,
            params=request.query_params,
            path=path_params,
            body=body,
            principal=principal or Principal(sim.me.account_id, "none"),
            version="2" if "/rest/api/2/" in route_def.template else "3",
        )
        result = route_def.handler(ctx)
        response = render(result)
        if charged:
            _charge(sim, request.method, route_def.template, response, result)
        work = _server_work(request.method, route_def.template, body)
        if work is not None and response.status_code < 400:
            # The work is done; the answer leaves after the modelled server time (a sleep: other requests go on).
            await servertime.work(faults.server_time_profile, *work)
        return response
    except ApiError as exc:
        response = error_response(exc)
        if charged:
            _charge(sim, request.method, route_def.template, response, None)
        return response


def _server_work(method: str, template: str, body: Any) -> tuple[servertime.Operation, int] | None:
    """Which modelled operation a request is, and its size (issues in a bulk create); None: no server time."""
    if method == "POST" and template.endswith("/issue/bulk"):
        updates = body.get("issueUpdates") if isinstance(body, dict) else None
        return "jira.bulk_create", len(updates) if isinstance(updates, list) else 0
    if method == "PUT" and template.endswith("/issue/{issueIdOrKey}"):
        return "jira.edit", 0
    if template.endswith("/search/jql"):
        return "jira.search", 0
    return None


def _charge(sim: JiraSim, method: str, template: str, response: Response, result: Any) -> None:
    """Take the request's points from the quota and put the quota headers on its answer."""
    body = result[1] if isinstance(result, tuple) else result
    cost = points_cost(method, template, response.status_code, body)
    with sim.lock:
        response.headers.update(sim.quota.charge(cost))


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
        if route_def.template not in OAUTH_PATHS:
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


# ------------------------------------------------------------------------------------------------ factory
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def create_app(options: JiraSimOptions | None = None) -> Starlette:
    """A fresh simulated site; ``app.state.sim`` is the ``JiraSim`` for in-process control."""
    sim = JiraSim(options)

    async def lifespan(app: Starlette) -> Any:
        yield
        sim.close()

    app = JiraSimApp(
        routes=[Route("/{path:path}", _dispatch, methods=_METHODS)],
        lifespan=asynccontextmanager(lifespan),
    )
    app.state.sim = sim
    return app


__all__ = ["Faults", "JiraSimOptions", "create_app"]
