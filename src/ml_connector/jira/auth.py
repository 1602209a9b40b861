"""Jira authentication: Basic (email + API token) and OAuth 2.0 3LO with rotating refresh tokens.

OAuth rules this module enforces:

* **Single flight.** Refreshes are serialised under one lock; a caller that waited re-checks whether somebody else
  already replaced the token it saw fail, so N concurrent callers cause one token call. Atlassian rejects a
  refresh token that was already used, so parallel refreshes would lock all but one caller out.
* **Persist first.** The rotated refresh token is saved to the ``TokenStore`` before the new access token is handed
  to anyone.
* **Retry once on 401.** A 401 triggers one refresh and one resend; a second 401 is an ``AuthError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import urlencode

import httpx2

from ml_connector.errors import AuthError, MalformedResponse, Rejected
from ml_connector.http import ApiSession
from ml_connector.jira.tokens import TokenSet, TokenStore
from ml_connector.logging import register_secret


class OAuthTokenManager:
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
        self.session = session
        self.client_id = client_id
        self._client_secret = client_secret
        self.store = store
        self.token_path = token_path
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        register_secret(client_secret)
        current = store.load()
        if current is None and initial_refresh_token:
            current = TokenSet(access_token="", refresh_token=initial_refresh_token, expires_at=0.0)
        self._current = current
        self.refresh_count = 0
        if current is not None:
            register_secret(current.access_token)
            register_secret(current.refresh_token)

    @property
    def current(self) -> TokenSet | None:
        return self._current

    def access_token(self) -> str:
        """A valid access token, refreshing first when it is missing or about to expire."""
        tokens = self._current
        if tokens is not None and not tokens.expired(margin=self.refresh_margin, now=self._clock()):
            return tokens.access_token
        return self.refresh(stale=tokens.access_token if tokens else None).access_token

    def refresh(self, *, stale: str | None) -> TokenSet:
        """Refresh unless another caller already replaced ``stale``; returns the token set to use."""
        with self._lock:
            current = self._current
            if (
                current is not None
                and current.access_token
                and current.access_token != stale
                and not current.expired(margin=self.refresh_margin, now=self._clock())
            ):
                return current
            stored = self.store.load()
            if stored is not None and (current is None or stored.refresh_token != current.refresh_token):
                # Another process (a CLI command beside the daemon) rotated the grant: its token is the live one.
                current = self._current = stored
                register_secret(stored.access_token)
                register_secret(stored.refresh_token)
                if (
                    stored.access_token
                    and stored.access_token != stale
                    and not stored.expired(margin=self.refresh_margin, now=self._clock())
                ):
                    return stored
            refresh_token = current.refresh_token if current else None
            if not refresh_token:
                raise AuthError(
                    "no Jira OAuth refresh token available; run the OAuth consent flow again", system="jira"
                )
            body = self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})
            tokens = self._tokens_from(body, previous=current)
            self.store.save(tokens)  # durable before anyone uses the new access token
            self._current = tokens
            self.refresh_count += 1
            return tokens

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Authorization-code grant (after the consent redirect)."""
        with self._lock:
            body = self._token_call({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
            tokens = self._tokens_from(body, previous=None)
            self.store.save(tokens)
            self._current = tokens
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

    def _tokens_from(self, body: dict[str, Any], *, previous: TokenSet | None) -> TokenSet:
        access = str(body["access_token"])
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        register_secret(access)
        register_secret(refresh)
        raw_expiry = body.get("expires_in")
        valid = isinstance(raw_expiry, int | float) and not isinstance(raw_expiry, bool) and raw_expiry > 0
        expires_in = float(raw_expiry) if valid and raw_expiry is not None else 3600.0
        return TokenSet(
            access_token=access,
            refresh_token=str(refresh) if refresh else None,
            expires_at=self._clock() + expires_in,
            scope=body.get("scope"),
            cloud_id=previous.cloud_id if previous else None,
        )


class OAuthBearerAuth(httpx2.Auth):
    """Adds ``Authorization: Bearer``; on a 401 refreshes once (single flight) and resends once."""

    requires_request_body = True

    def __init__(self, manager: OAuthTokenManager) -> None:
        self.manager = manager

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.manager.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = self.manager.refresh(stale=token)
            request.headers["Authorization"] = f"Bearer {fresh.access_token}"
            yield request


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
