"""IFS IAM (Keycloak) client-credentials auth.

* :class:`TokenProvider` caches the access token and refreshes it ``margin`` seconds before it expires. IFS issues
  short tokens (``expires_in`` 180 s by default), so the margin is capped at half the lifetime; otherwise a 3 s token
  with a 30 s margin would be refreshed on every call. Refresh is single-flight: concurrent callers wait for the one
  refresh in progress and share its token.
* :class:`IfsBearerAuth` is the ``httpx2.Auth`` that adds ``Authorization: Bearer``. A 401 means the server no longer
  accepts the token (revoked, its clock ahead of ours, restarted IAM): invalidate that token, fetch a fresh one and
  resend once. A second 401 is returned as is and the session turns it into ``AuthError``.

The token and the client secret are registered with the log redactor and never appear in messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from urllib.parse import quote

import httpx2
import structlog
from pydantic import SecretStr

from ml_connector.config.connections import IfsConnection
from ml_connector.errors import MalformedResponse
from ml_connector.http import ApiSession, build_client
from ml_connector.logging import register_secret

log = structlog.get_logger("ml_connector.ifs.auth")

# When the token response has no expires_in, assume a short life rather than the 3600 s many clients guess.
_DEFAULT_LIFETIME = 60.0
# Refresh this long before expiry (capped at half the token's life).
REFRESH_MARGIN = 30.0


def token_path(realm: str) -> str:
    return f"/auth/realms/{quote(realm, safe='')}/protocol/openid-connect/token"


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # on the provider's clock
    expires_at: float


class TokenProvider:
    """Thread-safe cache of one client-credentials access token."""

    def __init__(
        self,
        session: ApiSession,
        *,
        realm: str,
        client_id: str,
        client_secret: SecretStr | str,
        scope: str | None = None,
        refresh_margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._path = token_path(realm)
        self._client_id = client_id
        self._secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        register_secret(self._secret.get_secret_value())
        self._scope = scope
        self._margin = refresh_margin
        self._clock = clock
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self.refresh_count = 0

    @classmethod
    def for_connection(
        cls, connection: IfsConnection, *, transport: httpx2.BaseTransport | None = None
    ) -> TokenProvider:
        """A provider with its own HTTP client (no auth on it, so a token fetch can never recurse)."""
        client = build_client(connection.base_url, connection.http, transport=transport)
        session = ApiSession(client, system="ifs-iam", settings=connection.http)
        return cls(
            session,
            realm=connection.realm,
            client_id=connection.client_id,
            client_secret=connection.client_secret,
            scope=connection.scope or None,
        )

    def close(self) -> None:
        self._session.close()

    def token(self) -> str:
        """A token that is valid for at least the margin; refreshes when needed (one refresh at a time)."""
        current = self._token
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        with self._lock:
            current = self._token  # another thread may have refreshed while we waited
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            fresh = self._fetch()
            self._token = fresh
            return fresh.value

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after the server refused it; a no-op when it was already replaced."""
        with self._lock:
            if self._token is not None and self._token.value == token:
                self._token = None

    def _fetch(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        if self._scope:
            form["scope"] = self._scope
        started = self._clock()
        # The token request changes nothing on the server, so it is safe to retry like a GET.
        # A proxy page or a cut body is retried and, if it persists, a MalformedResponse (transient), not an AuthError.
        _, body = self._session.request_json("POST", self._path, data=form, idempotent=True, require=("access_token",))
        value = body["access_token"]
        if not isinstance(value, str) or not value:
            raise MalformedResponse(f"token endpoint {self._path} answered an empty access_token", system="ifs")
        register_secret(value)
        lifetime = _DEFAULT_LIFETIME
        raw = body.get("expires_in")
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
            lifetime = float(raw)
        margin = min(self._margin, lifetime / 2)
        self.refresh_count += 1
        log.info("ifs.token.issued", expires_in=lifetime, refresh_in=round(lifetime - margin, 1))
        return _Token(value=value, refresh_at=started + lifetime - margin, expires_at=started + lifetime)


class IfsBearerAuth(httpx2.Auth):
    """Bearer header from a :class:`TokenProvider`; one fresh-token resend on 401."""

    requires_request_body = True  # the body must be replayable for the resend

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.provider.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        log.info("ifs.token.refused", path=request.url.path)
        self.provider.invalidate(token)
        request.headers["Authorization"] = f"Bearer {self.provider.token()}"
        yield request
