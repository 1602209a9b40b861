"""``ApiSession``: send one logical request with pacing, classification and bounded retries.

Retries go through stamina and only on ``TransientError``. The wait before retry *n* is full jitter,
``uniform(0, min(backoff_max, backoff_initial * 2**n))``, raised to at least the server's ``Retry-After``.
A non-idempotent request (a create) is retried only when the server provably did not act on it:
a 429, a 503, or a connection that was never established.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx2
import stamina
import structlog

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import AuthError, ConnectorError, RateLimited, TransientError, Unavailable
from ml_connector.http.classify import classify
from ml_connector.http.pacing import Pacer

log = structlog.get_logger("ml_connector.http")


class CallObserver(Protocol):
    """Receives one event per HTTP exchange and per retry (metrics, bench counters)."""

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None: ...

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None: ...


class _NullObserver:
    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        return None

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        return None


def _transport_error(exc: httpx2.TransportError, system: str, method: str, path: str) -> Unavailable:
    kind = type(exc).__name__
    error = Unavailable(f"{kind} on {method} {path}", system=system)
    # Connect errors mean the request never reached the server: safe to resend even a create.
    error.not_sent = isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)  # type: ignore[attr-defined]
    return error


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
        self.pacer = pacer or Pacer(requests_per_minute=settings.requests_per_minute, burst=settings.burst)
        self.observer: CallObserver = observer or _NullObserver()
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        # Set when the process shuts down (SIGTERM): backoff and pacing waits end at once and the request is not
        # sent, so a stop is never held up by a Retry-After. ``Connector`` shares its ``stopping`` event here.
        self.stop = threading.Event()

    def close(self) -> None:
        self.client.close()

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        cap = min(self.settings.backoff_max, self.settings.backoff_initial * (2 ** (attempt - 1)))
        with self._rng_lock:
            return self._rng.uniform(0, cap)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        pace_keys: tuple[str, ...] = (),
        allow_status: tuple[int, ...] = (),
    ) -> httpx2.Response:
        """Send and classify; raise a ``ConnectorError`` subclass unless the status is a success or allowed."""
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        attempt = 0

        def should_retry(exc: Exception) -> bool | float:
            nonlocal attempt
            if not isinstance(exc, TransientError) or self.stop.is_set():
                return False
            if not idempotent and not (
                isinstance(exc, RateLimited) or exc.status == 503 or getattr(exc, "not_sent", False)
            ):
                return False
            attempt += 1
            delay = self.backoff(attempt)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                delay = max(delay, retry_after)
            self._after_throttle(exc, pace_keys, delay)
            self.observer.on_retry(self.system, exc, delay)
            log.info(
                "http.retry",
                system=self.system,
                method=method,
                error=type(exc).__name__,
                status=exc.status,
                delay=round(delay, 3),
                attempt=attempt,
            )
            if attempt >= self.settings.max_attempts:
                return delay  # stamina gives up now: no point in waiting
            # Wait here rather than in stamina, so a shutdown ends the wait (and the retries) at once.
            return False if self.stop.wait(delay) else 0.0

        for retry in stamina.retry_context(
            on=should_retry,
            attempts=self.settings.max_attempts,
            timeout=self.settings.max_retry_seconds,
        ):
            with retry:
                return self._send_once(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    pace_keys=pace_keys,
                    allow_status=allow_status,
                )
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

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
    ) -> httpx2.Response:
        request = self.client.build_request(method, url, params=params, json=json, data=data, headers=headers)
        self.pacer.wait(request.url.host, pace_keys, stop=self.stop)
        started = time.monotonic()
        path = request.url.path
        try:
            response = self.client.send(request)
        except httpx2.TransportError as exc:
            self.observer.on_response(self.system, method, _endpoint_template(path), 0, time.monotonic() - started)
            raise _transport_error(exc, self.system, method, path) from None
        response.read()
        elapsed = time.monotonic() - started
        self.observer.on_response(self.system, method, _endpoint_template(path), response.status_code, elapsed)
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
        return response
