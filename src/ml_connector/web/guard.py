"""What stands between the internet and the app: bounded request bodies, per-source rate limits, login throttling,
``Host``/``Origin`` checks and security headers.

Everything here runs before a request is trusted, so it reads as little as possible: a declared ``Content-Length``
over the limit is refused unread, a chunked body is cut off the moment it passes the limit, and a body that trickles
in slower than the read timeout is dropped.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

from ml_connector.config.connections import is_loopback_host

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_TRACKED_SOURCES = 10_000  # bounded memory whatever the number of attacking addresses
DEFAULT_PORTS = {"http": 80, "https": 443}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode("ascii")),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def route_path(scope: Scope) -> str:
    """The path below the app's mount point (``/c/<connection>`` when one connection's app is mounted in the
    deployment's), which is what the app's routes and path rules are written against."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class BodyTooLarge(Exception):
    """The body passed its byte limit while being read."""


class BodyTimeout(Exception):
    """The body did not arrive within the read timeout."""


# --------------------------------------------------------------------------------------------------- bounded bodies


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _plain(send: Send, status: int, text: str, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode("utf-8")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BoundedBodies:
    """ASGI middleware: every request body is read under ``limit_for(path)`` bytes and ``timeout_for(path)`` seconds.

    Refusals close the connection (``Connection: close``) so an unread body is never drained into memory.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int], timeout_for: Callable[[str], float]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.timeout_for = timeout_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        limit = self.limit_for(path)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            await _plain(send, 413, f"request body over {limit} bytes", [(b"connection", b"close")])
            return
        deadline = anyio.current_time() + self.timeout_for(path)
        seen = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal seen
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise BodyTimeout()
            with anyio.move_on_after(remaining) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                raise BodyTimeout()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, f"request body over {limit} bytes", [(b"connection", b"close")])
        except BodyTimeout:
            if not started:
                await _plain(send, 408, "request body not received in time", [(b"connection", b"close")])


def parse_form(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the dashboard's forms send)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return parse_qs(text, keep_blank_values=True, max_num_fields=2000)


@dataclass(frozen=True)
class Form:
    fields: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))


# ------------------------------------------------------------------------------------------------------ rate limits


class TokenBuckets:
    """One token bucket per source: ``burst`` at once, then ``rate`` per second; thread-safe, bounded in size."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, source: str) -> float:
        """0.0 when ``source`` may go ahead (a token is spent), else the seconds until it may."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.pop(source, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[source] = (tokens, now)
            while len(self._buckets) > MAX_TRACKED_SOURCES:
                self._buckets.popitem(last=False)
            return wait


class LoginThrottle:
    """Failed sign-ins per source: ``free`` failures, then a lockout doubling with each further failure.

    A source inside its lockout is refused before its token is even compared, so guessing costs time, not just
    attempts. A success clears the source; failures are forgotten after ``forget_after`` quiet seconds.
    """

    def __init__(
        self,
        *,
        free: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 900.0,
        forget_after: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _current(self, source: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(source, (0, now))
        if count and now - last > self.forget_after:
            self._failures.pop(source, None)
            return 0, now
        return count, last

    def locked_for(self, source: str) -> float:
        """Seconds ``source`` must still wait before its next attempt (0.0: may try now)."""
        with self._lock:
            now = self._clock()
            count, last = self._current(source, now)
            if count < self.free:
                return 0.0
            return max(0.0, last + self._delay(count) - now)

    def _delay(self, count: int) -> float:
        return min(self.max_delay, self.base_delay * 2.0 ** (count - self.free))

    def failed(self, source: str) -> int:
        """Record a failure; returns the failures counted for ``source``."""
        with self._lock:
            now = self._clock()
            count, _ = self._current(source, now)
            self._failures.pop(source, None)
            self._failures[source] = (count + 1, now)
            while len(self._failures) > MAX_TRACKED_SOURCES:
                self._failures.popitem(last=False)
            return count + 1

    def succeeded(self, source: str) -> None:
        with self._lock:
            self._failures.pop(source, None)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


# ------------------------------------------------------------------------------------------------ Host and Origin


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` → (lower-case host, port); None when it is not a plain host (userinfo, path, garbage)."""
    if not value or any(c in value for c in "/@?#\\ \t"):
        return None
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower().rstrip("."), port


class HostPolicy:
    """Which ``Host`` headers the dashboard answers: the configured public names and the loopback names.

    A DNS-rebinding page reaches the daemon under its own name (``Host: evil.example``), so any name not listed is
    refused. Loopback names are always safe to accept: a foreign page cannot make a browser send them from its own
    origin, and the Origin check stops cross-origin posts to them.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.any_port: set[str] = set()
        self.exact: set[tuple[str, int]] = set()
        for name in names:
            split = _split_host(name.strip())
            if split is None:
                continue
            host, port = split
            if port is None:
                self.any_port.add(host)
            else:
                self.exact.add((host, port))

    @classmethod
    def from_config(cls, public_url: str | None, public_hosts: Iterable[str]) -> HostPolicy:
        names = list(public_hosts)
        if public_url:
            netloc = urlsplit(public_url).netloc
            if netloc:
                names.append(netloc)
        return cls(names)

    def allows(self, host_header: str | None) -> bool:
        split = _split_host(host_header or "")
        if split is None:
            return False
        host, port = split
        if is_loopback_host(host) or host in self.any_port:
            return True
        return port is not None and (host, port) in self.exact


def effective_scheme(scope: Scope, *, tls_proxy: bool) -> str:
    """``https`` when the request came over TLS, or through the configured TLS proxy that says so."""
    if tls_proxy:
        forwarded = _header(scope, b"x-forwarded-proto")
        if forwarded:
            return forwarded.split(",")[0].strip().lower()
    return str(scope.get("scheme", "http"))


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, str, int | None]:
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def same_origin(scope: Scope, *, tls_proxy: bool) -> bool | None:
    """Whether the request's ``Origin`` (or, when absent, ``Referer``) is this very site; None when it has neither."""
    claimed = _header(scope, b"origin")
    if claimed is None or claimed == "null":
        referer = _header(scope, b"referer")
        if referer is None:
            return None if claimed is None else False
        claimed = referer
    try:
        parts = urlsplit(claimed)
        claimed_port = parts.port
    except ValueError:
        return False
    own = _split_host(_header(scope, b"host") or "")
    if own is None or not parts.hostname or parts.username or parts.password:
        return False
    scheme = effective_scheme(scope, tls_proxy=tls_proxy)
    return _origin_key(parts.scheme.lower(), parts.hostname.lower().rstrip("."), claimed_port) == _origin_key(
        scheme, own[0], own[1]
    )


class SecurityHeaders:
    """ASGI middleware: security headers on every response; HSTS only when the request came over TLS."""

    def __init__(self, app: ASGIApp, *, tls_proxy: bool) -> None:
        self.app = app
        self.tls_proxy = tls_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = effective_scheme(scope, tls_proxy=self.tls_proxy) == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {bytes(k).lower() for k, _ in message.get("headers", ())}
                extra = [h for h in SECURITY_HEADERS if h[0] not in present]
                if tls:
                    extra.append(HSTS)
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class HostCheck:
    """ASGI middleware: dashboard paths answer only to allowed ``Host`` names (machine paths are exempt: probes and
    Jira use whatever address reaches the daemon, and they carry no ambient credentials)."""

    def __init__(self, app: ASGIApp, *, policy: HostPolicy, exempt: Callable[[str], bool]) -> None:
        self.app = app
        self.policy = policy
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        if scope["type"] == "http" and not self.exempt(path) and not self.policy.allows(_header(scope, b"host")):
            await _plain(send, 400, "unknown Host; list this name in web.public_hosts (or web.public_url) to use it")
            return
        await self.app(scope, receive, send)


__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "BoundedBodies",
    "Form",
    "HostCheck",
    "HostPolicy",
    "LoginThrottle",
    "SecurityHeaders",
    "TokenBuckets",
    "effective_scheme",
    "parse_form",
    "retry_after",
    "same_origin",
]
