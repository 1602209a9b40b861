"""From a ``JiraConnection`` to an ``ApiSession``: Basic against the site URL, OAuth against
``{api_url}/ex/jira/{cloudId}`` (the cloud id discovered once and kept with the grant)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from ml_connector.config.connections import JiraBasicAuth, JiraConnection, JiraOAuth
from ml_connector.http import ApiSession, BearerAuth, CallObserver, Pacer, build_client
from ml_connector.jira.auth import OAuthTokenManager, discover_cloud_id
from ml_connector.jira.base import SYSTEM
from ml_connector.jira.tokens import MemoryTokenStore, TokenStore
from ml_connector.logging import register_secret


@dataclass(frozen=True)
class SessionOptions:
    """What a caller may bring to the session: a shared pacer, metrics, a test transport."""

    pacer: Pacer | None = None
    observer: CallObserver | None = None
    transport: httpx2.BaseTransport | None = None


def open_session(
    connection: JiraConnection, options: SessionOptions, token_store: TokenStore | None = None
) -> tuple[ApiSession, OAuthTokenManager | None]:
    """The API session and, for OAuth, the token manager behind it."""
    auth = connection.auth
    if isinstance(auth, JiraBasicAuth):
        secret = auth.api_token.get_secret_value()
        register_secret(secret)
        basic = httpx2.BasicAuth(auth.email, secret)
        return _api_session(connection.site_url, connection, options, basic), None
    assert isinstance(auth, JiraOAuth)
    manager = _token_manager(connection, auth, options, token_store or MemoryTokenStore())
    bearer = BearerAuth(manager, system=SYSTEM)
    api_url = str(auth.api_url).rstrip("/")
    cloud_id = auth.cloud_id or (manager.current.cloud_id if manager.current else None)
    if not cloud_id:
        cloud_id = _discover(connection, api_url, bearer, options)
        manager.set_cloud_id(cloud_id)
    return _api_session(f"{api_url}/ex/jira/{cloud_id}", connection, options, bearer), manager


def _api_session(base_url: str, connection: JiraConnection, options: SessionOptions, auth: httpx2.Auth) -> ApiSession:
    settings = connection.http
    client = build_client(base_url, settings, auth=auth, transport=options.transport)
    return ApiSession(client, system=SYSTEM, settings=settings, pacer=options.pacer, observer=options.observer)


def _token_manager(
    connection: JiraConnection, auth: JiraOAuth, options: SessionOptions, store: TokenStore
) -> OAuthTokenManager:
    """The grant's manager, on its own session (no bearer on it, so a token call never recurses)."""
    settings = connection.http
    token_http = build_client(str(auth.auth_url).rstrip("/"), settings, transport=options.transport)
    return OAuthTokenManager(
        session=ApiSession(token_http, system=SYSTEM, settings=settings, observer=options.observer),
        client_id=auth.client_id,
        client_secret=auth.client_secret.get_secret_value(),
        store=store,
        initial_refresh_token=auth.refresh_token.get_secret_value() if auth.refresh_token else None,
    )


def _discover(connection: JiraConnection, api_url: str, bearer: BearerAuth, options: SessionOptions) -> str:
    """The cloud id of the connection's site, asked once of the accessible-resources endpoint."""
    settings = connection.http
    client = build_client(api_url, settings, auth=bearer, transport=options.transport)
    discovery = ApiSession(client, system=SYSTEM, settings=settings, observer=options.observer)
    try:
        return discover_cloud_id(discovery, connection.site_url)
    finally:
        discovery.close()
