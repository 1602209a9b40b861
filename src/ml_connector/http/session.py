"""``ApiSession``: send one logical request with pacing, classification and bounded retries.

* Transient errors (5xx, timeouts, resets, malformed answers) are retried up to ``max_attempts`` tries within
  ``max_retry_seconds``. The wait before retry *n* is full jitter, ``uniform(0, min(backoff_max, backoff_initial *
  2**n))``, raised to at least the server's ``Retry-After``.
* A 429 is back-pressure, not a failure: the call waits (``Retry-After``, else an exponential backoff) and resends
  without using up an attempt, for as long as the run's :class:`RateLimitBudget` lasts. A stop request ends any
  wait at once (the last error is raised).
* A non-idempotent request (a create) is resent only when the server provably did not act on it: a 429 or
  a connection that was never established. A malformed answer, a reset after sending or a read timeout raise at
  once: the server may have acted, and the caller reconciles.
* Jira's points quota (OAuth apps): every answer's quota headers feed the pacer's ``QuotaGauge``; when it shows
  nothing left, calls wait for the window's reset (charged to the run's rate-limit budget) instead of meeting 429s,
  and the points each answer shows spent are added to the run's budget (``RateLimitBudget.points``).
* Calls in flight per endpoint (method + path template) are held to an adaptive limit (``http/concurrency.py``:
  grows while answers are fast, shrinks on 429/503 and rising latency, at most ``max_in_flight``), and each endpoint
  is paced to ``method_rates`` (Jira's per-method burst limits) on top of the per-host ``requests_per_minute``.
* Bodies are parsed inside the retry loop (:meth:`ApiSession.request_json`), so a malformed answer to a read is
  retried like a 5xx and never escapes as a parser exception.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypedDict, TypeVar

import httpx2
import structlog
from typing_extensions import Unpack

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import (
    AuthError,
    ConnectorError,
    MalformedResponse,
    RateLimited,
    TransientError,
    Unavailable,
)
from ml_connector.http.backoff import backoff_window
from ml_connector.http.classify import classify, response_json
from ml_connector.http.concurrency import AimdLimit, ConcurrencyGate
from ml_connector.http.pacing import HOLD, POINTS, BudgetObserver, Pacer
from ml_connector.http.ratelimit import RateLimitBudget, current_budget, read_quota
from ml_connector.http.redact import redact_text
from ml_connector.jsonbody import compact_json

T = TypeVar("T")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_OVERLOADED = frozenset({429, 503})  # answers that shrink the endpoint's in-flight limit

log = structlog.get_logger("ml_connector.http")


class CallObserver(Protocol):
    """Receives one event per HTTP exchange and per retry (metrics, bench counters)."""

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None: ...

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None: ...

    def on_quota_points(self, system: str, points: int) -> None: ...


class _NullObserver:
    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        return None

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        return None

    def on_quota_points(self, system: str, points: int) -> None:
        return None


def _transport_error(exc: httpx2.TransportError, system: str, method: str, path: str) -> Unavailable:
    """A failed exchange, saying whether the server may have seen the request (only a connect failure proves not)."""
    kind = type(exc).__name__
    detail = redact_text(str(exc))[:200]
    where = f"{method} {path}"
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return Unavailable(f"could not connect for {where} ({kind}: {detail})", system=system, not_sent=True)
    if isinstance(exc, httpx2.TimeoutException):
        return Unavailable(f"no answer to {where} in time ({kind}); the server may have acted", system=system)
    return Unavailable(
        f"connection lost before the answer to {where} was complete ({kind}: {detail}); the server may have acted",
        system=system,
    )


def _endpoint_template(path: str) -> str:
    """Collapse ids in a path so request counts group by endpoint (``/issue/{id}``)."""
    parts = []
    for part in path.split("/"):
        if part.isdigit() or (part and any(c.isdigit() for c in part) and "-" in part):
            parts.append("{id}")
        elif "(" in part:
            parts.append(part.split("(", 1)[0] + "({key})" + part.split(")", 1)[1] if ")" in part else part)
        else:
            parts.append(part)
    return "/".join(parts)


def may_have_acted(exc: ConnectorError) -> bool:
    """False only for answers that prove the server did not act (a 429, a connection never established). A 5xx,
    503 included, is ambiguous for a create (DESIGN §4.3; Jira: retry only what is idempotent), so it is not resent:
    the engine's intent and reconcile path settles it."""
    if isinstance(exc, RateLimited):
        return False
    return not (isinstance(exc, Unavailable) and exc.not_sent)


def _json_headers(headers: Mapping[str, str] | None) -> httpx2.Headers:
    """``headers`` with the Content-Type httpx2 gives a ``json=`` body, unless they name one."""
    merged = httpx2.Headers(headers)
    merged.setdefault("Content-Type", "application/json")
    return merged


def _what_was_expected(request: httpx2.Request) -> str:
    accept = request.headers.get("Accept", "").lower()
    if "json" in accept:
        return "JSON"
    return "XML" if "xml" in accept else "an API answer"


class RequestOptions(TypedDict, total=False):
    """What every request method passes through to :meth:`ApiSession.request_parsed`."""

    params: Mapping[str, Any] | None
    json: Any
    data: Mapping[str, str] | None
    headers: Mapping[str, str] | None
    idempotent: bool | None
    pace_keys: tuple[str, ...]
    allow_status: tuple[int, ...]


class ApiSession:
    """Sends requests for one system through a shared ``httpx2.Client``."""

    def __init__(
        self,
        client: httpx2.Client,
        *,
        system: str,
        settings: HttpSettings,
        pacer: Pacer | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.client = client
        self.system = system
        self.settings = settings
        self.pacer = pacer or Pacer(
            requests_per_minute=settings.requests_per_minute, burst=settings.burst, method_rates=settings.method_rates
        )
        self._gates: dict[str, ConcurrencyGate] = {}
        self._gates_lock = threading.Lock()
        self.observer: CallObserver = observer or _NullObserver()
        if isinstance(observer, BudgetObserver):
            self.pacer.watch(system, observer)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        # Set on shutdown (the connector shares its ``stopping`` event): every wait of this session ends at once.
        self.stop = threading.Event()

    def close(self) -> None:
        self.client.close()

    def gate(self, method: str, endpoint: str) -> ConcurrencyGate:
        """The adaptive in-flight limit of one endpoint class (``method`` + path template)."""
        key = f"{method.upper()} {endpoint}"
        with self._gates_lock:
            gate = self._gates.get(key)
            if gate is None:
                limit = AimdLimit(initial=self._initial_in_flight(method), cap=self.settings.max_in_flight)
                gate = self._gates[key] = ConcurrencyGate(limit)
            return gate

    def _initial_in_flight(self, method: str) -> int:
        """Where an endpoint's in-flight limit starts: ``initial_in_flight``, or for an endpoint paced to a documented
        burst limit (``method_rates``) as many as its pacing bucket lets out at once. The pacer already holds that
        endpoint to the documented rate, so a smaller start would only make a short run (100 edits of 0.35 s each)
        spend its first round trips in slow start; 429s and rising latency still shrink the limit as before."""
        burst = self.pacer.endpoint_burst(method)
        return max(self.settings.initial_in_flight, burst or 0)

    @property
    def gates(self) -> dict[str, ConcurrencyGate]:
        """Every endpoint class's gate so far (for metrics and tests)."""
        with self._gates_lock:
            return dict(self._gates)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        cap = backoff_window(attempt, self.settings.backoff_initial, self.settings.backoff_max)
        with self._rng_lock:
            return self._rng.uniform(0, cap)

    def _throttle_delay(self, throttled: int, retry_after: float | None) -> float:
        """Wait after the ``throttled``-th 429 of a call: at least half the exponential window, and Retry-After."""
        cap = backoff_window(throttled, self.settings.backoff_initial, self.settings.backoff_max)
        with self._rng_lock:
            delay: float = cap / 2 + self._rng.uniform(0, cap / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> httpx2.Response:
        """Send and classify; raise a ``ConnectorError`` subclass unless the status is a success or allowed."""
        return self.request_parsed(method, url, lambda response: response, **options)

    def request_json(
        self,
        method: str,
        url: str,
        *,
        expect: type[dict[str, Any]] | type[list[Any]] | None = dict,
        require: tuple[str, ...] = (),
        **options: Unpack[RequestOptions],
    ) -> tuple[httpx2.Response, Any]:
        """:meth:`request`, then the JSON body checked by :func:`response_json` (``MalformedResponse`` otherwise)."""
        return self.request_parsed(
            method, url, lambda r: (r, response_json(r, system=self.system, expect=expect, require=require)), **options
        )

    def request_parsed(
        self,
        method: str,
        url: str,
        parse: Callable[[httpx2.Response], T],
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        pace_keys: tuple[str, ...] = (),
        allow_status: tuple[int, ...] = (),
    ) -> T:
        """Send, classify and ``parse`` (which raises ``MalformedResponse`` for a body it cannot use), with retries."""
        resendable = idempotent if idempotent is not None else method.upper() in _IDEMPOTENT
        budget = current_budget() or RateLimitBudget(self.settings.max_retry_seconds, stop=self.stop)
        attempt = throttled = 0
        rate_waited = 0.0
        started = time.monotonic()
        while True:
            self._wait_out_deferral(method, url, pace_keys, budget)
            self._wait_for_quota(method, url, budget)
            try:
                response = self._send_once(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    pace_keys=pace_keys,
                    allow_status=allow_status,
                    budget=budget,
                )
                return parse(response)
            except RateLimited as exc:
                throttled += 1
                delay = max(self._throttle_delay(throttled, exc.retry_after), self.pacer.quota.wait_needed())
                self._after_throttle(exc, pace_keys, delay)
                if not budget.reserve(delay):
                    log.warning(
                        "http.rate_limit_gave_up",
                        system=self.system,
                        method=method,
                        waited=round(budget.waited, 1),
                        budget=budget.max_wait,
                        stopped=budget.stop.is_set(),
                    )
                    raise
                self.observer.on_retry(self.system, exc, delay)
                self._log_retry(method, exc, delay, throttled)
                if not budget.spend(delay):
                    raise
                rate_waited += delay
            except TransientError as exc:
                attempt += 1
                if attempt >= self.settings.max_attempts or not (resendable or not may_have_acted(exc)):
                    raise
                delay = self.backoff(attempt)
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                if time.monotonic() - started - rate_waited + delay > self.settings.max_retry_seconds:
                    raise
                self.observer.on_retry(self.system, exc, delay)
                self._log_retry(method, exc, delay, attempt)
                if self._pause(delay, budget):
                    raise

    def _pause(self, seconds: float, budget: RateLimitBudget) -> bool:
        """Sleep ``seconds``; True as soon as the run's or the session's stop is set (the caller gives up then)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if budget.stop.wait(min(left, 0.25)) or self.stop.is_set():
                return True
        return self.stop.is_set()

    def _wait_out_deferral(self, method: str, url: str, pace_keys: tuple[str, ...], budget: RateLimitBudget) -> None:
        """Wait while another call's 429 holds these keys back, charged to the run's budget and ended by stop."""
        delay = self.pacer.deferred_for(pace_keys)
        if delay <= 0:
            return
        if not budget.wait(delay):
            raise RateLimited(
                f"{method} {url.split('?', 1)[0]} held back {delay:.1f} s after a 429; the run's rate-limit wait "
                "budget is spent or a stop was requested",
                system=self.system,
                retry_after=delay,
            )
        self.pacer.report(HOLD, 0, delay)

    def _wait_for_quota(self, method: str, url: str, budget: RateLimitBudget) -> None:
        """Hold the call back while the points quota is spent, until its window resets, charged to the run's budget."""
        while (delay := self.pacer.quota.acquire()) > 0:
            log.info("http.quota_wait", system=self.system, seconds=round(delay, 1), limit=self.pacer.quota.limit)
            if not budget.wait(delay):
                raise RateLimited(
                    f"{method} {url.split('?', 1)[0]} held back: the points quota is spent until its reset in "
                    f"{delay:.0f} s, beyond the run's rate-limit wait budget (or a stop was requested)",
                    system=self.system,
                    retry_after=delay,
                    reason="quota",
                )
            self.pacer.report(POINTS, 0, delay)

    def _observe_quota(self, response: httpx2.Response, budget: RateLimitBudget) -> None:
        """Settle the quota point the call took, with what its answer's headers say (or nothing, without them)."""
        reading = read_quota(response.headers, response.status_code)
        if reading is None:
            self.pacer.quota.release()
            return
        points = self.pacer.quota.observe(reading)
        if points:
            budget.add_points(points)
            self.observer.on_quota_points(self.system, points)

    def _log_retry(self, method: str, exc: TransientError, delay: float, attempt: int) -> None:
        log.info(
            "http.retry",
            system=self.system,
            method=method,
            error=type(exc).__name__,
            status=exc.status,
            delay=round(delay, 3),
            attempt=attempt,
        )

    def _after_throttle(self, exc: TransientError, pace_keys: tuple[str, ...], delay: float) -> None:
        """Tell the pacer so *other* calls to the same throttled key wait too."""
        if isinstance(exc, RateLimited) and exc.reason and "issue" in exc.reason:
            for key in pace_keys:
                if key.startswith("issue:"):
                    self.pacer.defer(key, delay)
        elif isinstance(exc, RateLimited):
            for key in pace_keys:
                if not key.startswith("issue:"):
                    self.pacer.defer(key, delay)

    def _exchange(
        self, request: httpx2.Request, endpoint: str, pace_keys: tuple[str, ...]
    ) -> tuple[httpx2.Response, float]:
        """Send within the endpoint's concurrency gate and pacing; the answer, read, and its latency."""
        method = request.method
        with self.gate(method, endpoint).slot(self.stop) as slot:
            self.pacer.wait(request.url.host, pace_keys, stop=self.stop, endpoint=(method, endpoint))
            started = time.monotonic()
            try:
                response = self.client.send(request)
                response.read()
            except httpx2.TransportError as exc:
                slot.throttled = isinstance(exc, httpx2.TimeoutException)  # a far side too busy to answer in time
                self.observer.on_response(self.system, method, endpoint, 0, time.monotonic() - started)
                raise _transport_error(exc, self.system, method, request.url.path) from None
            elapsed = time.monotonic() - started
            if response.status_code in _OVERLOADED:
                slot.throttled = True
            elif response.status_code < 500:
                slot.latency = elapsed
        return response, elapsed

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        pace_keys: tuple[str, ...],
        allow_status: tuple[int, ...],
        budget: RateLimitBudget,
    ) -> httpx2.Response:
        content: bytes | None = None
        try:
            if json is not None:  # encoded here (orjson) instead of by httpx2 (the standard library): the same JSON
                content, headers = compact_json(json), _json_headers(headers)
            request = self.client.build_request(method, url, params=params, content=content, data=data, headers=headers)
            endpoint = _endpoint_template(request.url.path)
            response, elapsed = self._exchange(request, endpoint, pace_keys)
        except BaseException:
            # The call took a quota point (``_wait_for_quota``) and has no answer: a body or URL that cannot be
            # sent too, or the point would count as in flight for the rest of the process.
            self.pacer.quota.release()
            raise
        path = request.url.path
        self._observe_quota(response, budget)
        self.observer.on_response(self.system, method, endpoint, response.status_code, elapsed)
        log.debug(
            "http.response",
            system=self.system,
            method=method,
            path=path,
            status=response.status_code,
            ms=round(elapsed * 1000, 1),
        )
        if response.status_code in allow_status:
            return response
        error = classify(response, system=self.system)
        if error is not None:
            if isinstance(error, AuthError):
                log.warning("http.auth_refused", system=self.system, path=path, status=response.status_code)
            raise error
        expected = f"expected {_what_was_expected(request)} from {method} {path}"
        if 300 <= response.status_code < 400:  # redirects are not followed: an API never redirects to a login page
            target = httpx2.URL(response.headers.get("Location", ""))
            raise MalformedResponse(
                f"{expected}, got a {response.status_code} redirect to {target.host}{target.path} "
                "(proxy or login page?)",
                system=self.system,
            )
        media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media in {"text/html", "application/xhtml+xml"}:  # no API call answers with a web page
            raise MalformedResponse(f"{expected}, got {media} (proxy or login page?)", system=self.system)
        return response
