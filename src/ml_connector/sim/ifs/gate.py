"""The fault gate in front of every non-``/_sim/`` request.

A request is logged first, then scripted failures, latency and random drops apply, then (for projection calls) the
bearer token, the per-client rate budget and random ``MI_MODIFIED_ERROR``. The wire-level fault kinds live in
``sim/wire.py``; the gate only chooses when they apply.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_connector.sim import wire
from ml_connector.sim.ifs.projections import ProjectionHandler
from ml_connector.sim.ifs.responses import DEFAULT_MESSAGES, ifs_error, rate_limited, unauthorized
from ml_connector.sim.ifs.schema import BASE_PATH
from ml_connector.sim.ifs.simulator import FaultDecision, IfsSimulator
from ml_connector.sim.ifs.tokens import TokenInfo
from ml_connector.sim.ifs.urls import decoded_raw_path, endpoint_name


class FaultGate:
    """Wraps the projections and the other routes (``routes``: IAM) with logging, faults, auth and rate budget."""

    def __init__(self, sim: IfsSimulator, projections: ProjectionHandler, routes: ASGIApp) -> None:
        self.sim = sim
        self.projections = projections
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        headers = Headers(scope=scope)
        try:
            _, path = decoded_raw_path(scope)
        except UnicodeDecodeError:
            path = scope["path"]
        projection = path == BASE_PATH or path.startswith(BASE_PATH + "/")
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        info, why = sim.check_token(token)
        entry = sim.log_request(
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            endpoint=endpoint_name(scope["method"], path),
            if_match=headers.get("if-match"),
            client_id=info.client_id if info else None,
        )

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":  # logged before the client can see the response
                sim.finish_request(entry, message["status"])
            await send(message)

        decision = sim.decide(path, projection=projection, method=scope["method"])
        if decision.latency:
            await asyncio.sleep(decision.latency)
        kind = decision.kind
        if decision.drop or kind == "drop_before":
            await wire.drop(send)
            return
        if kind == "hang" and not await wire.hang(decision.hang_seconds, send):
            await wire.drop(send)  # the client gave up; nobody is left to answer
            return
        held = wire.HeldResponse() if kind in wire.HELD_KINDS else None
        reply: Send = held if held is not None else send_logged
        response = self._refusal(decision, projection, info, why)
        if response is None and projection:
            # dispatched here, not by the router: keys may hold any character, newlines included
            response = await self.projections.endpoint(Request(scope, receive))
        if response is not None:
            await response(scope, receive, reply)
        else:
            await self.routes(scope, receive, reply)
        if held is not None and kind is not None:
            if held.start is not None:
                sim.finish_request(entry, held.start["status"])
            await wire.deliver(kind, held, send)

    def _refusal(self, decision: FaultDecision, projection: bool, info: TokenInfo | None, why: str) -> Response | None:
        """The answer the gate gives instead of the handler (None lets the request through)."""
        sim = self.sim
        if decision.kind == "html":
            return wire.html_page()
        if decision.kind == "status":
            return _injected(decision, sim.options.realm)
        if not projection:
            return None
        if why:
            return unauthorized(sim.options.realm, why)
        assert info is not None
        throttled = sim.admit(info.client_id)
        if throttled is not None:
            return rate_limited(throttled.retry_after)
        if sim.random_503():
            return ifs_error(503, DEFAULT_MESSAGES[503], "MI_MODIFIED_ERROR")
        return None


def _injected(decision: FaultDecision, realm: str) -> Response:
    status = int(decision.status or 500)
    if status == 401:
        return unauthorized(realm, "invalid")
    headers: dict[str, str] = {}
    if status == 429 or decision.retry_after is not None:
        retry = decision.retry_after if decision.retry_after is not None else 1
        headers["Retry-After"] = str(max(0, round(retry)))
    message = decision.message or DEFAULT_MESSAGES.get(status, f"Injected failure ({status})")
    return ifs_error(status, message, decision.code, headers)
