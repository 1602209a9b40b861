"""The web app of a deployment serving several connections: each connection's app, mounted at ``/c/<name>``.

Every connection keeps its own dashboard (pages, sign-in, CSRF, its own secrets redacted), scoped to its store rows;
the layout offers the other connections. Jira delivers each connection's events to ``/webhooks/jira/<name>``
(``/webhooks/jira`` for a connection named ``default``); ``/metrics`` merges every connection's metrics with a
``connection`` label; ``/healthz`` and ``/readyz`` answer for the process and for every connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ml_connector.config.models import WEBHOOK_PATH, webhook_path
from ml_connector.metrics import CONTENT_TYPE, Metrics, render_connections
from ml_connector.web.guard import ASGIApp, Receive, Scope, Send
from ml_connector.web.routes.health import readyz as connection_readyz

CONNECTION_PREFIX = "/c/{}"


class ConnectionsApp:
    """ASGI dispatcher: ``/c/<name>/...`` to that connection's app (``root_path`` set, so its links stay below
    it), its webhook path to its receiver, anything else to the deployment's own routes (``home``)."""

    def __init__(self, apps: Mapping[str, ASGIApp], home: ASGIApp) -> None:
        self.apps = dict(apps)
        self.home = home

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope.get("path", "")
            for name, app in self.apps.items():
                prefix = CONNECTION_PREFIX.format(name)
                if path == webhook_path(name):
                    scope = {**scope, "path": WEBHOOK_PATH, "raw_path": WEBHOOK_PATH.encode()}
                elif path == prefix or path.startswith(prefix + "/"):
                    scope = {**scope, "root_path": scope.get("root_path", "") + prefix}
                else:
                    continue
                with structlog.contextvars.bound_contextvars(connection=name):  # this request's task only
                    await app(scope, receive, send)
                return
        await self.home(scope, receive, send)


def create_connections_app(apps: Mapping[str, FastAPI]) -> ConnectionsApp:
    """One app for every connection's ``create_app`` (in the order the config file lists them)."""
    home = FastAPI(title="ml-connector", docs_url=None, redoc_url=None, openapi_url=None)
    first = next(iter(apps))
    metrics: dict[str, Metrics] = {name: app.state.metrics for name, app in apps.items()}

    @home.get("/")
    def overview() -> RedirectResponse:
        return RedirectResponse(CONNECTION_PREFIX.format(first) + "/", status_code=303)

    @home.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @home.get("/readyz")
    def readyz() -> JSONResponse:
        # Names only: each connection's own /c/<name>/readyz tells why it is not ready.
        ready = {name: _ready(app) for name, app in apps.items()}
        body: dict[str, Any] = {"ready": all(ready.values()), "connections": ready}
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @home.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(render_connections(metrics), media_type=CONTENT_TYPE)

    return ConnectionsApp(apps, home)


def _ready(app: FastAPI) -> bool:
    return connection_readyz(app.state.web).status_code == 200
