"""FastAPI application: Jira webhook receiver, /healthz, /readyz, /metrics and the server-rendered dashboard."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ml_connector.config.connections import JiraOAuth
from ml_connector.config.models import WEBHOOK_PATH
from ml_connector.engine import Connector
from ml_connector.http.redact import redact, redact_text
from ml_connector.jira.webhooks import (
    SIGNATURE_HEADER,
    WebhookVerificationError,
    delivery_identifier,
    verify_jwt,
    verify_signature,
)
from ml_connector.metrics import CONTENT_TYPE, Metrics
from ml_connector.store import RECORD_STATES
from ml_connector.web import queries
from ml_connector.web.auth import ADMIN, SESSION_COOKIE, SESSION_TTL, DashboardAuth
from ml_connector.web.control import SchedulerControl, StoreControl
from ml_connector.web.guard import (
    BoundedBodies,
    Form,
    HostCheck,
    HostPolicy,
    LoginThrottle,
    SecurityHeaders,
    TokenBuckets,
    effective_scheme,
    parse_form,
    retry_after,
    same_origin,
)
from ml_connector.web.worker import BackgroundWork

log = structlog.get_logger("ml_connector.web")

HERE = Path(__file__).parent
MACHINE_PATHS = ("/healthz", "/readyz", "/metrics", WEBHOOK_PATH)
PAGE_SIZE = 50
HEALTH_LABELS = {
    "operational": "Operational",
    "unreachable": "Unreachable",
    "auth_failed": "Authentication failed",
}
SYSTEMS = ("ifs", "jira")
COUNTS_TTL = 10.0


class _TtlCache:
    """One value, recomputed at most every ``ttl`` seconds (shared by concurrent requests)."""

    def __init__(self, load: Callable[[], dict[tuple[str, str], int]], *, ttl: float) -> None:
        self._load = load
        self._ttl = ttl
        self._value: dict[tuple[str, str], int] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> dict[tuple[str, str], int]:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at > self._ttl:
                self._value = self._load()
                self._at = now
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


class _NotAllowed(Exception):
    """Raised by dashboard routes for a visitor who may not see them."""


class _Forbidden(Exception):
    """A POST the dashboard refuses: ``reason`` is said to the visitor (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _secrets(connector: Connector) -> tuple[str, ...]:
    """Every configured secret, so pages can strip them verbatim whatever field carries them."""
    cfg = connector.config
    auth = cfg.jira.auth
    values = [
        cfg.ifs.client_secret,
        getattr(auth, "api_token", None),
        getattr(auth, "client_secret", None),
        getattr(auth, "refresh_token", None),
        cfg.jira.webhook_secret,
        cfg.web.admin_token,
        cfg.web.read_token,
    ]
    return tuple(v.get_secret_value() for v in values if v is not None and v.get_secret_value())


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
    return metrics


def _int(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    return int(value)


def create_app(connector: Connector, *, scheduler: SchedulerControl | None = None) -> FastAPI:
    """Build the web app for one connector; ``scheduler`` is the daemon's live scheduler, if any.

    Background threads (inbox processor, dashboard jobs) start with the app's lifespan, or on first use when the app
    is mounted inside another app (sub-app lifespans do not run); ``app.state.work.stop()`` stops them.
    """
    store = connector.store
    config = connector.config
    control: SchedulerControl = scheduler or StoreControl(store)
    metrics = _metrics_for(connector)
    work = BackgroundWork(connector, metrics)
    web = config.web
    auth = DashboardAuth(
        web.admin_token.get_secret_value() if web.admin_token else None,
        web.read_token.get_secret_value() if web.read_token else None,
    )
    throttle = LoginThrottle()
    webhook_buckets = TokenBuckets(rate=config.webhooks.rate_per_second, burst=config.webhooks.burst)
    secrets = _secrets(connector)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    flow_names = [f.name for f in config.flows]
    # Counting 100,000 records is an index scan; the overview reuses the result for a few seconds.
    flow_counts = _TtlCache(store.count_by_flow_state, ttl=COUNTS_TTL)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        work.start()
        work.wake_inbox()  # events stored while we were down
        try:
            yield
        finally:
            await run_in_threadpool(work.stop)

    app = FastAPI(title="ml-connector", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.connector = connector
    app.state.control = control
    app.state.metrics = metrics
    app.state.work = work
    app.state.auth = auth
    app.state.flow_counts = flow_counts
    app.state.login_throttle = throttle
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    # Outermost last: headers go on every answer, refusals included; Host is checked before any body is read.
    app.add_middleware(
        BoundedBodies,
        limit_for=lambda path: config.webhooks.max_body_bytes if path == WEBHOOK_PATH else web.max_form_bytes,
        timeout_for=lambda path: config.webhooks.read_timeout,
    )
    app.add_middleware(HostCheck, policy=HostPolicy.from_config(web.public_url, web.public_hosts), exempt=_machine_path)
    app.add_middleware(SecurityHeaders, tls_proxy=web.tls_proxy)

    def clean(value: Any) -> Any:
        return redact(value, secrets=secrets)

    def clean_text(value: str | None) -> str:
        return redact(redact_text(value), secrets=secrets) if value else ""

    templates.env.filters["clean"] = clean_text
    templates.env.filters["when"] = _when

    # -- access ----------------------------------------------------------------------------------------------------

    @app.exception_handler(_NotAllowed)
    async def _not_allowed(request: Request, _exc: _NotAllowed) -> Response:
        if auth.token_required:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            return PlainTextResponse("authentication required", status_code=401)
        return PlainTextResponse(
            "The dashboard is reachable only from localhost while web.admin_token is not set.", status_code=403
        )

    def who(request: Request) -> str:
        identity = auth.identity(request)
        if identity is None:
            raise _NotAllowed()
        return identity

    def check_origin(request: Request, *, bearer: bool) -> None:
        # Besides the CSRF token: a state change must come from a page of this very site (Origin, else Referer).
        verdict = same_origin(request.scope, tls_proxy=web.tls_proxy)
        if verdict is False or (verdict is None and not bearer):
            log.warning("web.cross_origin_refused", path=request.url.path, client=_client(request))
            raise _Forbidden("cross-origin request refused (Origin/Referer is not this site)")

    async def checked_form(request: Request, *, act: bool = True) -> tuple[str, Form]:
        identity = who(request)
        check_origin(request, bearer=auth.is_bearer(identity))
        if act and auth.role(identity) != ADMIN:
            raise _Forbidden("this sign-in is read-only; actions need the admin token")
        form = Form(parse_form(await request.body()))
        if not auth.csrf_ok(identity, form.get("csrf")):
            raise _Forbidden("invalid or missing CSRF token; reload the page and try again")
        return identity, form

    @app.exception_handler(_Forbidden)
    async def _forbidden(_request: Request, exc: _Forbidden) -> Response:
        return PlainTextResponse(exc.reason, status_code=403)

    def page(request: Request, name: str, identity: str, **context: Any) -> HTMLResponse:
        context.update(
            request=request,
            csrf=auth.csrf_token(identity),
            token_mode=auth.token_required,
            can_act=auth.role(identity) == ADMIN,
            message=request.query_params.get("msg"),
            flows=flow_names,
        )
        return templates.TemplateResponse(request, name, context)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        if not auth.token_required:
            return RedirectResponse("/", status_code=303)
        return templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": None})

    @app.post("/login")
    async def login(request: Request) -> Response:
        if not auth.token_required:
            return RedirectResponse("/", status_code=303)
        check_origin(request, bearer=False)  # login CSRF: a foreign page must not sign a browser in
        source = _client(request) or "unknown"
        wait = throttle.locked_for(source)
        if wait > 0:
            log.warning("web.login_throttled", client=source, retry_after=retry_after(wait))
            return PlainTextResponse(
                "too many failed sign-ins from this address; try again later",
                status_code=429,
                headers={"Retry-After": retry_after(wait)},
            )
        form = Form(parse_form(await request.body()))
        candidate = form.get("token")
        target = _safe_next(form.get("next") or "/")
        role = auth.role_of_token(candidate) if candidate else None
        if role is None:
            failures = throttle.failed(source)
            log.warning("web.login_failed", client=source, failures=failures)
            return templates.TemplateResponse(
                request, "login.html", {"next": target, "error": "That token is not valid."}, status_code=401
            )
        throttle.succeeded(source)
        log.info("web.login", client=source, role=role)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            auth.new_session(role),
            max_age=SESSION_TTL,
            httponly=True,
            samesite="strict",
            secure=effective_scheme(request.scope, tls_proxy=web.tls_proxy) == "https",
            path="/",
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request, act=False)
        response = RedirectResponse("/login" if auth.token_required else "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- machine endpoints -----------------------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        reasons: list[str] = []
        problem = queries.database_ok(store)
        systems: dict[str, Any] = {}
        if problem:
            reasons.append(problem)
        else:
            health = store.health()
            for system in SYSTEMS:
                row = health.get(system)
                if row is None:
                    systems[system] = {"status": "unknown", "reason": "no contact yet", "last_success_at": None}
                    continue
                last = row.get("last_success_at")
                systems[system] = {
                    "status": row["status"],
                    "reason": clean_text(row.get("reason")) or None,
                    "last_success_at": last.isoformat() if last else None,
                }
                if row["status"] != "operational":
                    label = HEALTH_LABELS.get(row["status"], row["status"])
                    reasons.append(
                        f"{system}: {label}" + (f" ({clean_text(row.get('reason'))})" if row.get("reason") else "")
                    )
        ready = not reasons
        body = {"ready": ready, "database": problem or "ok", "systems": systems, "reasons": reasons}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    if config.webhooks.enabled:  # no route at all otherwise: 404, nothing to probe

        @app.post(WEBHOOK_PATH)
        async def jira_webhook(request: Request) -> JSONResponse:
            source = _client(request) or "unknown"
            wait = webhook_buckets.take(source)
            if wait > 0:
                metrics.webhooks.labels("throttled").inc()
                return JSONResponse(
                    {"error": "too many deliveries"}, status_code=429, headers={"Retry-After": retry_after(wait)}
                )
            body = await request.body()  # bounded by BoundedBodies: size and read timeout
            try:
                _verify_delivery(connector, request, body)  # before the body is parsed at all
            except WebhookVerificationError as exc:
                metrics.webhooks.labels("rejected").inc()
                log.warning("web.webhook_rejected", reason=exc.message, client=source)
                return JSONResponse({"error": "delivery not verified"}, status_code=401)
            return await _accept(request, body)

    async def _accept(request: Request, body: bytes) -> JSONResponse:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            metrics.webhooks.labels("invalid").inc()
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        identifier = delivery_identifier(request.headers)
        if identifier is None:
            metrics.webhooks.labels("invalid").inc()
            return JSONResponse({"error": "missing X-Atlassian-Webhook-Identifier"}, status_code=400)
        event = str(payload.get("webhookEvent") or "unknown")[:60]
        issue = payload.get("issue")
        issue_id = str(issue["id"])[:40] if isinstance(issue, dict) and issue.get("id") is not None else None
        stored = await run_in_threadpool(store.add_inbox_event, identifier[:200], event, issue_id, payload)
        if not stored:
            metrics.webhooks.labels("duplicate").inc()
            return JSONResponse({"status": "duplicate"}, status_code=200)
        metrics.webhooks.labels("accepted").inc()
        work.wake_inbox()
        return JSONResponse({"status": "accepted"}, status_code=202)

    # -- dashboard -------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        identity = who(request)
        health = store.health()
        systems = []
        for system in SYSTEMS:
            row = health.get(system)
            systems.append(
                {
                    "name": {"ifs": "IFS Cloud", "jira": "Jira Cloud"}[system],
                    "status": row["status"] if row else "unknown",
                    "label": HEALTH_LABELS.get(row["status"], row["status"]) if row else "Unknown (no contact yet)",
                    "reason": clean_text(row.get("reason")) if row else "",
                    "last_success_at": row.get("last_success_at") if row else None,
                    "checked_at": row.get("checked_at") if row else None,
                }
            )
        counts = flow_counts.get()
        flows = []
        for flow in config.flows:
            by_state = {s: counts.get((flow.name, s), 0) for s in RECORD_STATES}
            ctl = store.flow_control(flow.name)
            flows.append(
                {
                    "name": flow.name,
                    "enabled": flow.enabled,
                    "schedule": flow.schedule or "manual",
                    "entity_set": flow.entity_set,
                    "last_run": store.last_run(flow.name),
                    "next_run": control.next_run(flow.name),
                    "paused": control.is_paused(flow.name),
                    "sync_requested_at": ctl.get("sync_requested_at"),
                    "counts": by_state,
                    "total": sum(by_state.values()),
                    "failed": by_state.get("parked", 0) + by_state.get("retry", 0),
                    "cursor": store.get_cursor(flow.name),
                    "writeback_cursor": store.get_cursor(f"{flow.name}:writeback"),
                }
            )
        return page(
            request,
            "index.html",
            identity,
            systems=systems,
            flow_rows=flows,
            runs=queries.runs_page(store, limit=10),
            inbox_pending=queries.inbox_pending(store),
            live_scheduler=scheduler is not None,
        )

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request, flow: str | None = None, before: str | None = None) -> HTMLResponse:
        identity = who(request)
        flow = flow if flow in flow_names else None
        rows = queries.runs_page(store, flow=flow, before=_int(before), limit=PAGE_SIZE)
        older = rows[-1].id if len(rows) == PAGE_SIZE else None
        return page(request, "runs.html", identity, runs=rows, flow=flow, older=older, query=_query)

    @app.get("/records", response_class=HTMLResponse)
    def records(
        request: Request,
        flow: str | None = None,
        state: str | None = None,
        q: str | None = None,
        after: str | None = None,
    ) -> HTMLResponse:
        identity = who(request)
        flow = flow if flow in flow_names else None
        state = state if state in RECORD_STATES else None
        search = (q or "").strip()[:400] or None
        result = queries.list_records(
            store, flow=flow, states=(state,) if state else (), search=search, after=_int(after), limit=PAGE_SIZE
        )
        return page(
            request,
            "records.html",
            identity,
            rows=result.rows,
            next_after=result.next_after,
            flow=flow,
            state=state,
            q=search or "",
            states=RECORD_STATES,
            query=_query,
        )

    @app.get("/records/{record_id}", response_class=HTMLResponse)
    def record_page(request: Request, record_id: int) -> HTMLResponse:
        identity = who(request)
        record, trail = queries.record_with_trail(store, record_id)
        if record is None:
            return HTMLResponse(
                templates.get_template("missing.html").render(request=request, what=f"record {record_id}"),
                status_code=404,
            )
        payload = json.dumps(clean(record.draft), indent=2, sort_keys=True, default=str) if record.draft else None
        events = [
            {
                "id": e.id,
                "at": e.at,
                "run_id": e.run_id,
                "event": e.event,
                "outcome": e.outcome,
                "message": clean_text(e.message),
                "detail": json.dumps(clean(e.detail), sort_keys=True, default=str) if e.detail else "",
                "digest": e.digest,
            }
            for e in trail
        ]
        return page(
            request,
            "record.html",
            identity,
            record=record,
            last_error=clean_text(record.last_error),
            payload=payload,
            events=events,
            failed=record.state in queries.FAILED_STATES,
        )

    @app.get("/failed", response_class=HTMLResponse)
    def failed(request: Request, flow: str | None = None, after: str | None = None) -> HTMLResponse:
        identity = who(request)
        flow = flow if flow in flow_names else None
        result = queries.failed_queue(store, flow=flow, after=_int(after), limit=PAGE_SIZE)
        return page(
            request,
            "failed.html",
            identity,
            rows=[(r, clean_text(r.last_error)) for r in result.rows],
            next_after=result.next_after,
            flow=flow,
            query=_query,
        )

    @app.post("/failed/replay")
    async def replay(request: Request) -> Response:
        _, form = await checked_form(request)
        ids = [i for i in (_int(v) for v in form.getlist("record_id")) if i is not None]
        flow = form.get("flow")
        flow = flow if flow in flow_names else None
        replay_all = form.get("all") == "1"
        if not ids and not replay_all:
            return RedirectResponse("/failed?" + urlencode({"msg": "Nothing selected to replay."}), status_code=303)
        queued = await run_in_threadpool(_requeue, connector, ids, flow, replay_all)
        flow_counts.clear()
        flows = sorted({r for r in queued})
        if flows:
            work.replay(flows)
        total = sum(queued.values())
        log.info("web.replay_requested", records=total, flows=flows)
        message = f"Re-queued {total} record(s); replay running in the background." if total else "Nothing to replay."
        target = form.get("return_to")
        back = _safe_next(target) if target else "/failed"
        sep = "&" if "?" in back else "?"
        return RedirectResponse(back + sep + urlencode({"msg": message}), status_code=303)

    @app.post("/flows/{name}/{action}")
    async def flow_action(request: Request, name: str, action: str) -> Response:
        await checked_form(request)
        if name not in flow_names or action not in {"sync", "pause", "resume"}:
            return PlainTextResponse("unknown flow or action", status_code=404)
        handler = {"sync": control.sync_now, "pause": control.pause, "resume": control.resume}[action]
        await run_in_threadpool(handler, name)
        log.info("web.flow_action", flow=name, action=action)
        message = {
            "sync": f"Sync of {name} requested.",
            "pause": f"{name} paused.",
            "resume": f"{name} resumed.",
        }[action]
        return RedirectResponse("/?" + urlencode({"msg": message}), status_code=303)

    return app


def _verify_delivery(connector: Connector, request: Request, body: bytes) -> None:
    """Raise ``WebhookVerificationError`` unless the delivery carries a valid JWT (OAuth) or HMAC signature."""
    jira = connector.config.jira
    authorization = request.headers.get("authorization")
    signature = request.headers.get(SIGNATURE_HEADER)
    if isinstance(jira.auth, JiraOAuth) and (authorization or not signature):
        verify_jwt(authorization, jira.auth.client_secret.get_secret_value())
        return
    secret = jira.webhook_secret.get_secret_value() if jira.webhook_secret else ""
    verify_signature(body, signature, secret)


def _requeue(connector: Connector, ids: list[int], flow: str | None, replay_all: bool) -> dict[str, int]:
    """Re-queue failed records (``Store.requeue``, the CLI's path); returns flow → count."""
    store = connector.store
    done: dict[str, int] = {}
    if replay_all:
        for row in store.requeue(flow=flow):
            done[row.flow] = done.get(row.flow, 0) + 1
        return done
    by_flow: dict[str, list[str]] = {}
    for record_id in ids[:1000]:
        record = store.get_record_by_id(record_id)
        if record is not None and record.state in queries.FAILED_STATES:
            by_flow.setdefault(record.flow, []).append(record.ifs_key)
    for name, keys in by_flow.items():
        rows = store.requeue(flow=name, keys=keys)
        done[name] = len(rows)
    return done


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _machine_path(path: str) -> bool:
    return path in MACHINE_PATHS


def _safe_next(target: str) -> str:
    """Only same-site paths, never ``//host`` or a URL (open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


__all__ = ["create_app"]
