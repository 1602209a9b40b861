"""Dashboard access: admin and read-only tokens (Bearer header or a session cookie holding an HMAC of one),
localhost-only without tokens, and CSRF tokens for POST actions.

The session cookie is ``<issued-at>.<role>.<HMAC(role's token, "session:<role>:<issued-at>")>``: it proves knowledge
of the token without containing it, and expires. CSRF tokens are an HMAC of the session identity under a key derived
from the admin token (or a per-process random key when there is none), so a cross-site page cannot forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from starlette.requests import Request

from ml_connector.config.connections import is_loopback_host

SESSION_COOKIE = "mlc_session"
SESSION_TTL = 12 * 3600
LOCAL_IDENTITY = "localhost"
ADMIN, READ = "admin", "read"


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


class DashboardAuth:
    """Decides who may see the dashboard and who may act; one instance per app.

    Roles: the admin token may act (Sync now, Pause, Resume, Replay), the read token only sees. Without tokens the
    dashboard is localhost-only and a local visitor is admin.
    """

    def __init__(
        self, admin_token: str | None, read_token: str | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._tokens = {role: t for role, t in ((ADMIN, admin_token), (READ, read_token)) if t}
        self._token = admin_token or None
        base = self._token.encode("utf-8") if self._token else secrets.token_bytes(32)
        self._csrf_key = hmac.new(base, b"csrf-key", hashlib.sha256).digest()
        self._clock = clock

    @property
    def token_required(self) -> bool:
        return self._token is not None

    def _now(self) -> int:
        return int(self._clock())

    def role_of_token(self, candidate: str) -> str | None:
        """The role ``candidate`` signs in as; every token is compared (constant time, no early exit)."""
        found = None
        for role, token in self._tokens.items():
            if hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8")):
                found = role
        return found

    def new_session(self, role: str = ADMIN) -> str:
        # The MAC key is the role's own token: changing a token ends the sessions it opened.
        issued = str(self._now())
        return f"{issued}.{role}.{_mac(self._tokens[role].encode('utf-8'), f'session:{role}:{issued}')}"

    def session_role(self, value: str | None) -> str | None:
        if not value or self._token is None:
            return None
        issued, _, rest = value.partition(".")
        role, _, mac = rest.partition(".")
        token = self._tokens.get(role)
        if token is None or not issued.isdigit():
            return None
        if not hmac.compare_digest(mac, _mac(token.encode("utf-8"), f"session:{role}:{issued}")):
            return None
        age = self._now() - int(issued)
        return role if 0 <= age <= SESSION_TTL else None

    def valid_session(self, value: str | None) -> bool:
        return self.session_role(value) is not None

    def bearer_role(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return self.role_of_token(value.strip())

    def identity(self, request: Request) -> str | None:
        """Who this request is (for CSRF binding); None when it may not see the dashboard."""
        if self._token is None:
            return LOCAL_IDENTITY if is_loopback_host(request.client.host if request.client else None) else None
        role = self.bearer_role(request)
        if role is not None:
            return f"bearer:{role}"
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie if self.valid_session(cookie) else None

    def role(self, identity: str) -> str | None:
        if identity == LOCAL_IDENTITY:
            return ADMIN if self._token is None else None
        if identity.startswith("bearer:"):
            return identity.removeprefix("bearer:")
        return self.session_role(identity)

    @staticmethod
    def is_bearer(identity: str) -> bool:
        return identity.startswith("bearer:")

    def csrf_token(self, identity: str) -> str:
        return _mac(self._csrf_key, "csrf:" + identity)

    def csrf_ok(self, identity: str, submitted: str | None) -> bool:
        if self.is_bearer(identity):  # API clients: browsers never attach a Bearer header on their own
            return True
        return bool(submitted) and hmac.compare_digest(str(submitted), self.csrf_token(identity))
