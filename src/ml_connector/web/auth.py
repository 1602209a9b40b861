"""Dashboard access: admin token (Bearer header or a session cookie holding an HMAC of it), localhost-only without a
token, and CSRF tokens for POST actions.

The session cookie is ``<issued-at>.<HMAC(token, "session:<issued-at>")>``: it proves knowledge of the token without
containing it, and expires. CSRF tokens are an HMAC of the session identity under a key derived from the admin token
(or a per-process random key when there is none), so a cross-site page cannot forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable

from starlette.requests import Request

SESSION_COOKIE = "mlc_session"
SESSION_TTL = 12 * 3600
LOCAL_IDENTITY = "localhost"


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DashboardAuth:
    """Decides who may see the dashboard; one instance per app."""

    def __init__(self, admin_token: str | None, *, clock: Callable[[], float] = time.time) -> None:
        self._token = admin_token or None
        self._key = self._token.encode("utf-8") if self._token else secrets.token_bytes(32)
        self._csrf_key = hmac.new(self._key, b"csrf-key", hashlib.sha256).digest()
        self._clock = clock

    @property
    def token_required(self) -> bool:
        return self._token is not None

    def _now(self) -> int:
        return int(self._clock())

    def check_token(self, candidate: str) -> bool:
        if self._token is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8"), self._token.encode("utf-8"))

    def new_session(self) -> str:
        issued = str(self._now())
        return f"{issued}.{_mac(self._key, 'session:' + issued)}"

    def valid_session(self, value: str | None) -> bool:
        if not value or self._token is None:
            return False
        issued, _, mac = value.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(mac, _mac(self._key, "session:" + issued)):
            return False
        age = self._now() - int(issued)
        return 0 <= age <= SESSION_TTL

    def bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and bool(value) and self.check_token(value.strip())

    def identity(self, request: Request) -> str | None:
        """Who this request is (for CSRF binding); None when it may not see the dashboard."""
        if self._token is None:
            return LOCAL_IDENTITY if is_loopback(request.client.host if request.client else None) else None
        if self.bearer_ok(request):
            return "bearer"
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie if self.valid_session(cookie) else None

    def csrf_token(self, identity: str) -> str:
        return _mac(self._csrf_key, "csrf:" + identity)

    def csrf_ok(self, identity: str, submitted: str | None) -> bool:
        if identity == "bearer":  # API clients: browsers never attach a Bearer header on their own
            return True
        return bool(submitted) and hmac.compare_digest(str(submitted), self.csrf_token(identity))
