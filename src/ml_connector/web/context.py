"""What every route shares: the connector's parts, the dashboard's sign-in, and the FastAPI dependencies over them.

``create_app`` builds one ``WebContext`` and keeps it on ``app.state.web``; routes reach it (and the store, and the
signed-in identity) through the dependencies below instead of closures, so each router lives in its own module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector
from ml_connector.http.redact import redact, redact_text
from ml_connector.metrics import Metrics
from ml_connector.store import Store
from ml_connector.web import display
from ml_connector.web.auth import ADMIN, DashboardAuth
from ml_connector.web.control import SchedulerControl
from ml_connector.web.guard import Form, LoginThrottle, TokenBuckets, parse_form, same_origin
from ml_connector.web.worker import BackgroundWork

log = structlog.get_logger("ml_connector.web")

HERE = Path(__file__).parent
COUNTS_TTL = 10.0


class TtlCache:
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


class NotAllowed(Exception):
    """Raised for a visitor who may not see the dashboard (``create_app`` turns it into a redirect, 401 or 403)."""


class Forbidden(Exception):
    """A POST the dashboard refuses: ``reason`` is said to the visitor (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class WebContext:
    """The parts of one connector the web app uses; built once per app."""

    connector: Connector
    control: SchedulerControl
    metrics: Metrics
    work: BackgroundWork
    live_scheduler: bool
    auth: DashboardAuth = field(init=False)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    webhook_buckets: TokenBuckets = field(init=False)
    secrets: tuple[str, ...] = field(init=False)
    templates: Jinja2Templates = field(init=False)
    flow_names: list[str] = field(init=False)
    flow_counts: TtlCache = field(init=False)

    def __post_init__(self) -> None:
        web = self.config.web
        self.auth = DashboardAuth(
            web.admin_token.get_secret_value() if web.admin_token else None,
            web.read_token.get_secret_value() if web.read_token else None,
        )
        self.webhook_buckets = TokenBuckets(rate=self.config.webhooks.rate_per_second, burst=self.config.webhooks.burst)
        self.secrets = self.config.secret_values()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["clean"] = self.clean_text
        self.templates.env.filters["when"] = display.when
        self.templates.env.filters["cursor"] = display.cursor
        self.templates.env.globals["duration"] = display.duration
        self.templates.env.filters["jira"] = self.jira_link
        self.flow_names = [f.name for f in self.config.flows]
        # Counting 100,000 records is an index scan; the overview reuses the result for a few seconds.
        self.flow_counts = TtlCache(self.store.records.count_by_flow_state, ttl=COUNTS_TTL)

    @property
    def config(self) -> ConnectorConfig:
        return self.connector.config

    @property
    def store(self) -> Store:
        return self.connector.store

    def clean(self, value: Any) -> Any:
        """A JSON-like value without secrets: sensitive keys, secret-looking text and every configured secret."""
        return redact(value, secrets=self.secrets)

    def clean_text(self, value: str | None) -> str:
        return redact(redact_text(value), secrets=self.secrets) if value else ""

    def jira_link(self, key: str | None) -> Markup:
        return display.jira_link(key, str(self.config.jira.url))

    def known_flow(self, name: str | None) -> str | None:
        return name if name in self.flow_names else None

    def page(self, request: Request, name: str, identity: str, **context: Any) -> HTMLResponse:
        """A dashboard page with what every page's layout needs (CSRF token, rights, flash message, flows)."""
        context.update(
            request=request,
            csrf=self.auth.csrf_token(identity),
            token_mode=self.auth.token_required,
            can_act=self.auth.role(identity) == ADMIN,
            message=request.query_params.get("msg"),
            flows=self.flow_names,
            query=query,
        )
        return self.templates.TemplateResponse(request, name, context)

    def check_origin(self, request: Request, *, bearer: bool) -> None:
        """Besides the CSRF token: a state change must come from a page of this very site (Origin, else Referer)."""
        verdict = same_origin(request.scope, tls_proxy=self.config.web.tls_proxy)
        if verdict is False or (verdict is None and not bearer):
            log.warning("web.cross_origin_refused", path=request.url.path, client=client_host(request))
            raise Forbidden("cross-origin request refused (Origin/Referer is not this site)")

    async def checked_form(self, request: Request, *, act: bool) -> tuple[str, Form]:
        """The signed-in identity and the POSTed form, after the origin, role (``act``: admin) and CSRF checks."""
        identity = self.identity(request)
        self.check_origin(request, bearer=self.auth.is_bearer(identity))
        if act and self.auth.role(identity) != ADMIN:
            raise Forbidden("this sign-in is read-only; actions need the admin token")
        form = Form(parse_form(await request.body()))
        if not self.auth.csrf_ok(identity, form.get("csrf")):
            raise Forbidden("invalid or missing CSRF token; reload the page and try again")
        return identity, form

    def identity(self, request: Request) -> str:
        identity = self.auth.identity(request)
        if identity is None:
            raise NotAllowed()
        return identity


# -- dependencies ----------------------------------------------------------------------------------------------------


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


Web = Annotated[WebContext, Depends(web_context)]


def _viewer(request: Request, web: Web) -> str:
    return web.identity(request)


async def _acting(request: Request, web: Web) -> tuple[str, Form]:
    return await web.checked_form(request, act=True)


async def _signed_in(request: Request, web: Web) -> tuple[str, Form]:
    return await web.checked_form(request, act=False)


def _known_flow(web: Web, flow: str | None = None) -> str | None:
    return web.known_flow(flow)


Viewer = Annotated[str, Depends(_viewer)]  # any signed-in identity (GET pages)
AdminForm = Annotated[tuple[str, Form], Depends(_acting)]  # an admin's checked POST
SignedInForm = Annotated[tuple[str, Form], Depends(_signed_in)]  # any signed-in identity's checked POST
FlowFilter = Annotated[str | None, Depends(_known_flow)]  # the ``flow`` query parameter, if it names a flow


# -- small helpers ---------------------------------------------------------------------------------------------------


def client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def here(request: Request, path: str) -> str:
    """``path`` of this app as the browser must ask for it: below ``/c/<connection>`` when the app is one
    connection's, mounted in the deployment's app."""
    return str(request.scope.get("root_path", "")) + path


def safe_next(target: str) -> str:
    """Only same-site paths, never ``//host`` or a URL (open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def to_int(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    return int(value)


def query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
