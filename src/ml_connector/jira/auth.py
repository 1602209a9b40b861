"""Jira authentication: Basic (email + API token) and OAuth 2.0 3LO with rotating refresh tokens.

:class:`OAuthTokenManager` is the 3LO grant behind the shared bearer mechanism
(:class:`~ml_connector.http.bearer.BearerTokenCache`: expiry margin, single-flight renewal, one renewal and resend
on 401). What is particular to Atlassian's grant stays here:

* **Rotation.** Every refresh returns a new refresh token and invalidates the old one, so parallel refreshes would
  lock all but one caller out (the cache's single flight prevents that).
* **Persist first.** The rotated refresh token is saved to the ``TokenStore`` before the new access token is handed
  to anyone.
* **Adopt a rotation.** When another process sharing the store (a CLI command beside the daemon) rotated the grant,
  its tokens are adopted instead of reusing a spent refresh token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from ml_connector.errors import AuthError, MalformedResponse, Rejected
from ml_connector.http import ApiSession, BearerToken, BearerTokenCache, granted_lifetime
from ml_connector.jira.tokens import TokenSet, TokenStore
from ml_connector.logging import register_secret

# When the token answer has no usable expires_in; Atlassian's access tokens live an hour.
_DEFAULT_LIFETIME = 3600.0


def _bearer_of(tokens: TokenSet | None, lifetime: float | None = None) -> BearerToken | None:
    return None if tokens is None else BearerToken(tokens.access_token, tokens.expires_at, lifetime)


def _register(tokens: TokenSet) -> None:
    register_secret(tokens.access_token)
    register_secret(tokens.refresh_token)


class OAuthTokenManager(BearerTokenCache):
    """Owns the current ``TokenSet`` of one Jira OAuth grant."""

    def __init__(
        self,
        *,
        session: ApiSession,
        client_id: str,
        client_secret: str,
        store: TokenStore,
        token_path: str = "/oauth/token",  # noqa: S107 - a URL path, not a secret
        initial_refresh_token: str | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(margin=refresh_margin, clock=clock)
        self.session = session
        self.client_id = client_id
        self._client_secret = client_secret
        self.store = store
        self.token_path = token_path
        register_secret(client_secret)
        current = store.load()
        if current is None and initial_refresh_token:
            current = TokenSet(access_token="", refresh_token=initial_refresh_token, expires_at=0.0)
        self._current = current
        if current is not None:
            _register(current)
        self._hold(_bearer_of(current))

    @property
    def current(self) -> TokenSet | None:
        return self._current

    def adopt_token(self) -> BearerToken | None:
        stored = self.store.load()
        current = self._current
        if stored is None or (current is not None and stored.refresh_token == current.refresh_token):
            return None
        # Another process rotated the grant: its refresh token is the live one, and maybe its access token too.
        self._current = stored
        _register(stored)
        return _bearer_of(stored)

    def fetch_token(self) -> BearerToken:
        current = self._current
        refresh_token = current.refresh_token if current else None
        if not refresh_token:
            raise AuthError(
                "no Jira OAuth grant is stored (never given, or forgotten by `jira logout`); "
                "run `ml-connector jira login`",
                system="jira",
            )
        body = self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})
        tokens, lifetime = self._tokens_from(body, previous=current)
        self.store.save(tokens)  # durable before anyone uses the new access token
        self._current = tokens
        return BearerToken(tokens.access_token, tokens.expires_at, lifetime)

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Authorization-code grant (after the consent redirect)."""
        with self._lock:
            body = self._token_call({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
            tokens, lifetime = self._tokens_from(body, previous=None)
            self.store.save(tokens)
            self._current = tokens
            self._hold(_bearer_of(tokens, lifetime))
            return tokens

    def set_cloud_id(self, cloud_id: str) -> None:
        """Remember the discovered cloud id alongside the grant so restarts skip discovery."""
        with self._lock:
            current = self._current
            if current is not None and current.cloud_id != cloud_id:
                updated = TokenSet(
                    access_token=current.access_token,
                    refresh_token=current.refresh_token,
                    expires_at=current.expires_at,
                    scope=current.scope,
                    cloud_id=cloud_id,
                )
                self.store.save(updated)
                self._current = updated

    def _token_call(self, grant: dict[str, str]) -> dict[str, Any]:
        payload = {"client_id": self.client_id, "client_secret": self._client_secret, **grant}
        try:
            # A proxy page or a cut body raises MalformedResponse (transient): the grant is fine, the answer was not.
            _, body = self.session.request_json(
                "POST", self.token_path, json=payload, pace_keys=("oauth-token",), require=("access_token",)
            )
        except Rejected as exc:
            # RFC 6749: invalid_grant (a used or revoked refresh token) is a 400; Atlassian also answers 403.
            raise AuthError(
                f"Jira OAuth token request refused: {exc.message}", system="jira", status=exc.status
            ) from None
        if not isinstance(body["access_token"], str) or not body["access_token"]:
            raise MalformedResponse(
                f"OAuth token endpoint {self.token_path} answered an empty access_token", system="jira"
            )
        result: dict[str, Any] = body
        return result

    def _tokens_from(self, body: dict[str, Any], *, previous: TokenSet | None) -> tuple[TokenSet, float]:
        """The new grant and the access token's lifetime in seconds."""
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        lifetime = granted_lifetime(body.get("expires_in"), default=_DEFAULT_LIFETIME)
        tokens = TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            expires_at=self._clock() + lifetime,
            scope=body.get("scope"),
            cloud_id=previous.cloud_id if previous else None,
        )
        _register(tokens)
        return tokens, lifetime


def authorize_url(
    auth_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: list[str],
    state: str,
    audience: str = "api.atlassian.com",
) -> str:
    """The consent URL to send an admin to (step 1 of 3LO)."""
    query = urlencode(
        {
            "audience": audience,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
            "prompt": "consent",
        }
    )
    return f"{auth_url.rstrip('/')}/authorize?{query}"


def _normalise_site(url: str) -> str:
    return url.strip().rstrip("/").lower()


def discover_cloud_id(session: ApiSession, site_url: str, *, path: str = "/oauth/token/accessible-resources") -> str:
    """The cloudId of ``site_url`` among the sites the grant can reach."""
    _, resources = session.request_json("GET", path, expect=list, pace_keys=("oauth-resources",))
    wanted = _normalise_site(site_url)
    for resource in resources:
        if isinstance(resource, dict) and _normalise_site(str(resource.get("url", ""))) == wanted:
            return str(resource["id"])
    reachable = ", ".join(str(r.get("url")) for r in resources if isinstance(r, dict)) or "none"
    raise AuthError(
        f"the OAuth grant does not cover {site_url}; sites it can reach: {reachable}", system="jira", status=403
    )
