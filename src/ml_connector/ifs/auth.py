"""IFS IAM (Keycloak) client-credentials auth: the grant-specific token call behind the shared bearer mechanism.

:class:`TokenProvider` is a :class:`~ml_connector.http.bearer.BearerTokenCache` (expiry margin, single-flight
renewal, one renewal and resend on 401 through ``BearerAuth``). IFS issues short tokens (``expires_in`` 180 s by
default), which is why the cache caps the margin at half the lifetime.

The token and the client secret are registered with the log redactor and never appear in messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import httpx2
import structlog
from pydantic import SecretStr

from ml_connector.config.connections import IfsConnection
from ml_connector.errors import MalformedResponse
from ml_connector.http import ApiSession, BearerToken, BearerTokenCache, build_client, granted_lifetime
from ml_connector.logging import register_secret

log = structlog.get_logger("ml_connector.ifs.auth")

# When the token response has no expires_in, assume a short life rather than the 3600 s many clients guess.
_DEFAULT_LIFETIME = 60.0
# Refresh this long before expiry (capped at half the token's life).
REFRESH_MARGIN = 30.0


def token_path(realm: str) -> str:
    return f"/auth/realms/{quote(realm, safe='')}/protocol/openid-connect/token"


class TokenProvider(BearerTokenCache):
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
        super().__init__(margin=refresh_margin, clock=clock)
        self._session = session
        self._path = token_path(realm)
        self._client_id = client_id
        self._secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        register_secret(self._secret.get_secret_value())
        self._scope = scope

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

    def fetch_token(self) -> BearerToken:
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
        lifetime = granted_lifetime(body.get("expires_in"), default=_DEFAULT_LIFETIME)
        log.info("ifs.token.issued", expires_in=lifetime, refresh_in=round(lifetime - self.margin_for(lifetime), 1))
        return BearerToken(value, expires_at=started + lifetime, lifetime=lifetime)
