"""FastAPI application: Jira webhook receiver, /healthz, /readyz, /metrics and the server-rendered dashboard.

``create_app`` wires one connector's ``WebContext`` (web/context.py), the security middleware (web/guard.py) and the
routers (web/routes/); the routes themselves hold no state of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ml_connector.config.models import WEBHOOK_PATH
from ml_connector.engine import Connector
from ml_connector.metrics import Metrics
from ml_connector.web.context import HERE, Forbidden, NotAllowed, WebContext, here
from ml_connector.web.control import SchedulerControl, StoreControl
from ml_connector.web.guard import BoundedBodies, HostCheck, HostPolicy, SecurityHeaders
from ml_connector.web.routes import actions, health, pages, webhooks
from ml_connector.web.worker import BackgroundWork

MACHINE_PATHS = (*health.PATHS, WEBHOOK_PATH)
# Bodies are read only up to these sizes, and only for this long: larger or slower requests are refused unread.
MAX_FORM_BYTES = 64 * 1024  # a dashboard form (a bulk replay of a few hundred ids) is far smaller
MAX_WEBHOOK_BYTES = 1024 * 1024  # a Jira delivery is a few KiB; HMAC over 1 MiB is cheap
BODY_READ_TIMEOUT = 10.0


def create_app(
    connector: Connector,
    *,
    scheduler: SchedulerControl | None = None,
    work: Callable[[Connector, Metrics], BackgroundWork] = BackgroundWork,
    connections: Sequence[str] = (),
) -> FastAPI:
    """Build the web app for one connector; ``scheduler`` is the daemon's live scheduler, if any; ``work`` builds
    what runs webhook events and replays (in this process, or as queued jobs with ``runner.kind: procrastinate``);
    ``connections`` the names of every connection the deployment serves (more than one: each page offers the others).

    Background threads (inbox processor, dashboard jobs) start with the app's lifespan, or on first use when the app
    is mounted inside another app (sub-app lifespans do not run); ``app.state.work.stop()`` stops them.
    """
    metrics = _metrics_for(connector)
    web = WebContext(
        connector=connector,
        control=scheduler or StoreControl(connector.store),
        metrics=metrics,
        work=work(connector, metrics),
        live_scheduler=scheduler is not None,
    )
    web.templates.env.globals["connections"] = list(connections)
    web.templates.env.globals["connection"] = connector.config.name

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        web.work.start()
        web.work.wake_inbox()  # events stored while we were down
        try:
            yield
        finally:
            await run_in_threadpool(web.work.stop)

    app = FastAPI(title="ml-connector", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.web = web
    app.state.connector = connector
    app.state.control = web.control
    app.state.metrics = metrics
    app.state.work = web.work
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _add_middleware(app, web)
    _add_error_pages(app, web)
    app.include_router(health.router)
    if connector.config.webhooks.enabled:  # no route at all otherwise: 404, nothing to probe
        app.include_router(webhooks.router)
    app.include_router(pages.router)
    app.include_router(actions.router)
    return app


def _add_middleware(app: FastAPI, web: WebContext) -> None:
    """Outermost last: headers go on every answer, refusals included; Host is checked before any body is read."""
    config = web.config
    app.add_middleware(
        BoundedBodies,
        limit_for=lambda path: MAX_WEBHOOK_BYTES if path == WEBHOOK_PATH else MAX_FORM_BYTES,
        timeout_for=lambda path: BODY_READ_TIMEOUT,
    )
    policy = HostPolicy.from_config(config.web.public_url, config.web.public_hosts)
    app.add_middleware(HostCheck, policy=policy, exempt=_machine_path)
    app.add_middleware(SecurityHeaders, tls_proxy=config.web.tls_proxy)


def _add_error_pages(app: FastAPI, web: WebContext) -> None:
    auth = web.auth

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, _exc: NotAllowed) -> Response:
        if auth.token_required:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(here(request, f"/login?next={quote(target, safe='')}"), status_code=303)
            return PlainTextResponse("authentication required", status_code=401)
        return PlainTextResponse(
            "The dashboard is reachable only from localhost while web.admin_token is not set.", status_code=403
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(_request: Request, exc: Forbidden) -> Response:
        return PlainTextResponse(exc.reason, status_code=403)


def _metrics_for(connector: Connector) -> Metrics:
    """Use the connector's ``Metrics`` observer, or install one while its clients are not built yet."""
    observer = connector.observer
    if isinstance(observer, Metrics):
        metrics = observer
    else:
        metrics = Metrics()
        if observer is None and connector._ifs is None and connector._jira is None:
            connector.observer = metrics  # clients are built lazily and pick it up
    metrics.store = connector.store
    metrics.flows = [f.name for f in connector.config.flows]
    metrics.connection = connector.config.name
    metrics.quota_remaining = connector.quota_left
    if connector.config.runner.rate_buckets == "postgres":  # the workers' budget use, read back from PostgreSQL
        metrics.shared_budget = connector.shared_budget_use
    return metrics


def _machine_path(path: str) -> bool:
    return path in MACHINE_PATHS


__all__ = ["create_app"]
