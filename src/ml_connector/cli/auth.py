"""``ml-connector auth jira``: the OAuth 2.0 (3LO) consent that yields the first Jira refresh token.

The token goes encrypted into the store's credentials (where the daemon and every command read the rotated grant);
it is never printed. The redirect arrives at a one-shot loopback listener (``--listen``) or is pasted back.
"""

from __future__ import annotations

import secrets
import webbrowser
from pathlib import Path
from urllib.parse import urlsplit

import typer

from ml_connector.cli.app import app
from ml_connector.cli.context import ConfigOption, config_path, load
from ml_connector.cli.oauth_callback import Callback, CallbackListener, parse_listen, parse_pasted
from ml_connector.config.connections import JiraConnection, JiraOAuth
from ml_connector.config.models import ConnectorConfig
from ml_connector.errors import AuthError, ConfigError
from ml_connector.http import ApiSession, BearerAuth, build_client
from ml_connector.jira.auth import OAuthTokenManager, authorize_url, discover_cloud_id
from ml_connector.jira.tokens import TokenSet, TokenStore
from ml_connector.store import Store

# The classic scopes cover every call the connector makes; offline_access yields the refresh token.
DEFAULT_SCOPES = ["read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-webhook", "offline_access"]
DEFAULT_LISTEN = "127.0.0.1:8765"
_REFUSALS = {
    401: "; check jira.auth.client_id and client_secret against the app's settings in the developer console",
    403: "; the code is used, expired or was issued for another --redirect-uri: consent again",
}

auth_app = typer.Typer(help="Obtain the credentials the connector needs (OAuth consent).", no_args_is_help=True)
app.add_typer(auth_app, name="auth")


@auth_app.command("jira")
def jira(
    listen: str | None = typer.Option(
        None, "--listen", help=f"Receive the redirect on this loopback HOST:PORT (e.g. {DEFAULT_LISTEN})."
    ),
    code: str | None = typer.Option(
        None, "--code", help="The code (or the whole redirect URL) of a consent given earlier; skips the prompt."
    ),
    redirect_uri: str | None = typer.Option(
        None, "--redirect-uri", help="The app's callback URL (default: http://HOST:PORT/callback of --listen)."
    ),
    scopes: list[str] = typer.Option(DEFAULT_SCOPES, "--scope", help="A scope to ask for; repeat for several."),
    open_browser: bool = typer.Option(False, "--open", help="Open the consent URL in the local browser."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the redirect with --listen."),
    config: Path | None = ConfigOption,
) -> None:
    """Run the Jira OAuth consent and store the refresh token (encrypted) where the daemon reads it."""
    cfg = load(config)
    auth = _oauth_settings(cfg)
    if "offline_access" not in scopes:
        raise ConfigError("--scope must include offline_access: without it Jira grants no refresh token")
    redirect = redirect_uri or f"http://{listen or DEFAULT_LISTEN}/callback"
    if code is not None:
        pasted = parse_pasted(code)
        grant_code = pasted.checked_code(pasted.state)  # this run sent no request to compare the state with
    else:
        grant_code = _consent(auth, redirect, scopes, listen=listen, open_browser=open_browser, timeout=timeout)
    cloud_id = _exchange_and_store(cfg, config, grant_code, redirect)
    typer.echo(f"Jira OAuth grant stored, encrypted, in the store; {cfg.jira.site_url} is cloud id {cloud_id}.")


def _oauth_settings(cfg: ConnectorConfig) -> JiraOAuth:
    if not isinstance(cfg.jira.auth, JiraOAuth):
        raise ConfigError("jira.auth.kind is not oauth: an API token needs no consent", path="jira.auth.kind")
    if not cfg.store.url:
        raise ConfigError("store.url is not set: the refresh token has nowhere to be kept", path="store.url")
    return cfg.jira.auth


def _consent(
    auth: JiraOAuth, redirect: str, scopes: list[str], *, listen: str | None, open_browser: bool, timeout: float
) -> str:
    """Show the consent URL (with a fresh CSRF state) and return the code of the redirect that answers it."""
    state = secrets.token_urlsafe(24)
    listener = None
    if listen is not None:
        host, port = parse_listen(listen)
        listener = CallbackListener(host, port, path=_path_of(redirect))  # bound before anyone can follow the URL
    url = authorize_url(str(auth.auth_url), client_id=auth.client_id, redirect_uri=redirect, scopes=scopes, state=state)
    typer.echo("Open this URL as the Jira integration user and approve the access:")
    typer.echo(url)
    if open_browser:
        webbrowser.open(url)
    if listener is not None:
        typer.echo(f"Waiting up to {timeout:g} s for the redirect to {redirect} ...")
        callback = listener.wait(timeout)
    else:
        callback = parse_pasted(typer.prompt("Paste the URL the browser was redirected to"))
        if callback.state is None:
            callback = Callback(callback.code, state, callback.error)  # a bare code: the admin vouches for it
    return callback.checked_code(state)


def _path_of(redirect: str) -> str:
    return urlsplit(redirect).path or "/"


def _exchange_and_store(cfg: ConnectorConfig, config: Path | None, code: str, redirect: str) -> str:
    """Trade the code for the grant, save it, and remember the site's cloud id with it."""
    from ml_connector.runner.credentials import DbTokenStore, resolve_key

    assert cfg.store.url is not None
    auth = _oauth_settings(cfg)
    jira = cfg.jira
    token_store = DbTokenStore(Store.open(cfg.store.url), resolve_key(cfg, config_path=config_path(config)))
    token_http = build_client(str(auth.auth_url).rstrip("/"), jira.http)
    manager = OAuthTokenManager(
        session=ApiSession(token_http, system="jira", settings=jira.http),
        client_id=auth.client_id,
        client_secret=auth.client_secret.get_secret_value(),
        store=_NewGrant(token_store),
    )
    try:
        _exchange(manager, code, redirect)
        cloud_id = _discover(jira, auth, manager)
        manager.set_cloud_id(cloud_id)
    finally:
        manager.session.close()
    return cloud_id


class _NewGrant:
    """Writes through to the store but never reads it: a consent replaces a grant that is spent, revoked or
    encrypted with a lost key, so the old one must not be decrypted (that failure is what sends admins here)."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store

    def load(self) -> TokenSet | None:
        return None

    def save(self, tokens: TokenSet) -> None:
        self._store.save(tokens)


def _exchange(manager: OAuthTokenManager, code: str, redirect: str) -> None:
    try:
        manager.exchange_code(code, redirect)
    except AuthError as exc:
        # The token endpoint says little: name the likely cause of each refusal (jira-api.md §8).
        cause = _REFUSALS.get(exc.status or 0, "")
        raise AuthError(f"{exc.message}{cause}", system="jira", status=exc.status) from None


def _discover(jira: JiraConnection, auth: JiraOAuth, manager: OAuthTokenManager) -> str:
    client = build_client(str(auth.api_url).rstrip("/"), jira.http, auth=BearerAuth(manager, system="jira"))
    session = ApiSession(client, system="jira", settings=jira.http)
    try:
        return discover_cloud_id(session, jira.site_url)
    finally:
        session.close()
