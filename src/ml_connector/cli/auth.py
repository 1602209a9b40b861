"""``ml-connector jira login`` / ``jira logout``: the OAuth 2.0 (3LO) consent that yields the connector's Jira grant,
and forgetting it again.

The grant goes encrypted into the store's credentials (where the daemon and every command read the rotated grant);
it is never printed. The redirect arrives at a one-shot loopback listener (``--listen``) or is pasted back. Nothing
is stored until the code is exchanged and the site's cloud id found: a failed login leaves no half grant behind.
``auth jira`` is the old name of ``jira login``, kept as a hidden alias.
"""

from __future__ import annotations

import secrets
import webbrowser
from pathlib import Path
from urllib.parse import urlsplit

import typer

from ml_connector.cli.app import ExitCode, app, err_console
from ml_connector.cli.context import ConfigOption, config_path, load
from ml_connector.cli.oauth_callback import LOGIN, Callback, CallbackListener, parse_listen, parse_pasted
from ml_connector.config.connections import JiraConnection, JiraOAuth
from ml_connector.config.models import ConnectorConfig
from ml_connector.errors import AuthError, ConfigError, ConnectorError, TransientError
from ml_connector.http import ApiSession, BearerAuth, build_client
from ml_connector.jira.auth import OAuthTokenManager, authorize_url, discover_cloud_id
from ml_connector.jira.tokens import MemoryTokenStore, TokenStore
from ml_connector.store import Store

# The classic scopes cover every call the connector makes; offline_access yields the refresh token.
DEFAULT_SCOPES = ["read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-webhook", "offline_access"]
DEFAULT_LISTEN = "127.0.0.1:8765"
_REFUSALS = {
    400: f"; check jira.auth.auth_url and that --redirect-uri is the app's callback URL, then run `{LOGIN}` again",
    401: "; check jira.auth.client_id and client_secret against the app's settings in the developer console",
    403: f"; the code is used, expired or was issued for another --redirect-uri: run `{LOGIN}` again",
}
# Atlassian documents no endpoint that revokes a 3LO grant; its owner or a site admin revokes the app's access.
REVOKE_WHERE = (
    "the integration user revokes the app in their Atlassian account settings (https://id.atlassian.com/manage-profile"
    ", Connected apps), or a site admin does in admin.atlassian.com (the site > Connected apps > Manage authorization "
    "> Revoke)"
)

jira_app = typer.Typer(
    help="The Jira OAuth grant: `login` runs the consent, `logout` forgets it.", no_args_is_help=True
)
app.add_typer(jira_app, name="jira")
auth_app = typer.Typer(help="Deprecated: use `ml-connector jira login`.", no_args_is_help=True, hidden=True)
app.add_typer(auth_app, name="auth", hidden=True)

_LISTEN = typer.Option(
    None, "--listen", help=f"Receive the redirect on this loopback HOST:PORT (e.g. {DEFAULT_LISTEN})."
)
_CODE = typer.Option(
    None, "--code", help="The code (or the whole redirect URL) of a consent given earlier; skips the prompt."
)
_REDIRECT = typer.Option(
    None, "--redirect-uri", help="The app's callback URL (default: http://HOST:PORT/callback of --listen)."
)
_SCOPES = typer.Option(DEFAULT_SCOPES, "--scope", help="A scope to ask for; repeat for several.")
_OPEN = typer.Option(False, "--open", help="Open the consent URL in the local browser.")
_TIMEOUT = typer.Option(300.0, "--timeout", help="Seconds to wait for the redirect with --listen.")


@jira_app.command("login")
def login(
    listen: str | None = _LISTEN,
    code: str | None = _CODE,
    redirect_uri: str | None = _REDIRECT,
    scopes: list[str] = _SCOPES,
    open_browser: bool = _OPEN,
    timeout: float = _TIMEOUT,
    config: Path | None = ConfigOption,
) -> None:
    """Run the Jira OAuth consent and store the grant (encrypted) where the daemon reads it."""
    _login(listen, code, redirect_uri, scopes, open_browser, timeout, config)


@auth_app.command("jira", hidden=True)
def auth_jira(
    listen: str | None = _LISTEN,
    code: str | None = _CODE,
    redirect_uri: str | None = _REDIRECT,
    scopes: list[str] = _SCOPES,
    open_browser: bool = _OPEN,
    timeout: float = _TIMEOUT,
    config: Path | None = ConfigOption,
) -> None:
    """Deprecated name of `ml-connector jira login` (same options)."""
    err_console.print(f"`ml-connector auth jira` is now `{LOGIN}` (same options); the old name will go.")
    _login(listen, code, redirect_uri, scopes, open_browser, timeout, config)


@jira_app.command("logout")
def logout(
    config: Path | None = ConfigOption,
    keep_webhooks: bool = typer.Option(
        False,
        "--keep-webhooks",
        help="Forget the grant even if the webhooks it registered cannot be deleted (Jira sends their events until "
        "they expire).",
    ),
) -> None:
    """Delete the webhooks the connector registered, forget the stored Jira OAuth grant, and say where to revoke it
    at Atlassian."""
    cfg = load(config)
    if not cfg.store.url:
        raise ConfigError("store.url is not set: there is no stored grant to forget", path="store.url")
    from ml_connector.runner.credentials import JIRA_OAUTH

    store = Store.open(cfg.store.url, connection=cfg.name)
    try:
        _refuse_while_running(cfg, store)
        webhooks_left = _delete_webhooks(config, cfg, store)
        if webhooks_left is not None and not keep_webhooks:
            err_console.print(f"{webhooks_left} The grant is kept, so that a second try can delete them.")
            raise typer.Exit(ExitCode.UNAVAILABLE)
        forgotten = store.credentials.delete(JIRA_OAUTH)
    finally:
        store.close()
    if webhooks_left is not None:
        err_console.print(webhooks_left)
    typer.echo("Forgot the Jira OAuth grant stored in the store." if forgotten else "No Jira OAuth grant was stored.")
    typer.echo(f"Atlassian offers no API to revoke it; to revoke the connector's access, {REVOKE_WHERE}.")
    auth = cfg.jira.auth
    if isinstance(auth, JiraOAuth):
        if auth.refresh_token is not None:
            typer.echo("jira.auth.refresh_token is still set in the configuration: delete it, or commands use it.")
        typer.echo(f"Commands that call Jira now fail until `{LOGIN}` is run again.")


def _delete_webhooks(config: Path | None, cfg: ConnectorConfig, store: Store) -> str | None:
    """Delete the webhooks the connector registered while the grant still allows it (they are the grant's: Jira
    would send their events until they expire). What could not be done and why, or None."""
    from ml_connector.cli.context import open_connector
    from ml_connector.runner.webhooks import delete_registrations

    rows = store.webhooks.all()
    if not rows or not isinstance(cfg.jira.auth, JiraOAuth):
        return None
    try:
        connector = open_connector(config)
        try:
            deleted = delete_registrations(connector.jira, store)
        finally:
            connector.close()
    except ConnectorError as exc:
        ids = ", ".join(str(row["webhook_id"]) for row in rows)
        until = max(row["expires_at"] for row in rows)
        return (
            f"[bold red]Could not delete the Jira webhook(s) {ids} the connector registered[/]: {exc}. Jira sends "
            f"their events to the connector until {until:%Y-%m-%d %H:%M} UTC unless the app's access is revoked."
        )
    typer.echo(f"Deleted the Jira webhook(s) the connector registered: {', '.join(map(str, deleted))}.")
    return None


def _refuse_while_running(cfg: ConnectorConfig, store: Store) -> None:
    """A daemon or a sync holds the grant in memory and saves each rotated token: it would store the grant again."""
    from ml_connector.engine.locks import FlowBusy
    from ml_connector.runner.lease import SCHEDULER_LEASE

    for lease in (SCHEDULER_LEASE, *(f"flow:{flow.name}" for flow in cfg.flows)):
        held = store.leases.holder(lease)
        if held is not None:
            raise FlowBusy(
                f"{held[0]} uses this store ({lease} lease) and keeps the grant in memory, so it would store it "
                "again; stop it, then run `ml-connector jira logout`"
            )


def _login(
    listen: str | None,
    code: str | None,
    redirect_uri: str | None,
    scopes: list[str],
    open_browser: bool,
    timeout: float,
    config: Path | None,
) -> None:
    cfg = load(config)
    auth = _oauth_settings(cfg)
    if "offline_access" not in scopes:
        raise ConfigError("--scope must include offline_access: without it Jira grants no refresh token")
    redirect = redirect_uri or f"http://{listen or DEFAULT_LISTEN}/callback"
    token_store = _token_store(cfg, config)  # a store or key problem shows before anyone consents
    if code is not None:
        pasted = parse_pasted(code)
        grant_code = pasted.checked_code(pasted.state)  # this run sent no request to compare the state with
    else:
        grant_code = _consent(auth, redirect, scopes, listen=listen, open_browser=open_browser, timeout=timeout)
    cloud_id = _exchange_and_store(cfg, token_store, grant_code, redirect)
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


def _token_store(cfg: ConnectorConfig, config: Path | None) -> TokenStore:
    from ml_connector.runner.credentials import DbTokenStore, resolve_key

    assert cfg.store.url is not None
    return DbTokenStore(
        Store.open(cfg.store.url, connection=cfg.name), resolve_key(cfg, config_path=config_path(config))
    )


def _exchange_and_store(cfg: ConnectorConfig, token_store: TokenStore, code: str, redirect: str) -> str:
    """Trade the code for the grant and find the site's cloud id; only then save both, in one write.

    The grant is held in memory until then: a consent replaces a grant that is spent, revoked or encrypted with a
    lost key, so the old one is never read, and a failed login must not leave a grant without its site behind."""
    auth = _oauth_settings(cfg)
    jira = cfg.jira
    pending = MemoryTokenStore()
    token_http = build_client(str(auth.auth_url).rstrip("/"), jira.http)
    manager = OAuthTokenManager(
        session=ApiSession(token_http, system="jira", settings=jira.http),
        client_id=auth.client_id,
        client_secret=auth.client_secret.get_secret_value(),
        store=pending,
    )
    try:
        _exchange(manager, code, redirect)
        cloud_id = _discover(jira, auth, manager)
        manager.set_cloud_id(cloud_id)
    finally:
        manager.session.close()
    grant = pending.load()
    assert grant is not None  # the exchange saved it
    token_store.save(grant)
    return cloud_id


def _with_fix(exc: ConnectorError, fix: str) -> ConnectorError:
    """The same kind of error (so the same exit code), its message followed by what to do."""
    return type(exc)(f"{exc.message}; {fix}", system=exc.system, status=exc.status)


def _exchange(manager: OAuthTokenManager, code: str, redirect: str) -> None:
    try:
        manager.exchange_code(code, redirect)
    except AuthError as exc:
        # The token endpoint says little: name the likely cause of each refusal (jira-api.md §8).
        cause = _REFUSALS.get(exc.status or 0, f"; run `{LOGIN}` again")
        raise AuthError(f"{exc.message}{cause}", system="jira", status=exc.status) from None
    except TransientError as exc:  # 5xx, a proxy's HTML page, no answer: the code may still be good for minutes
        raise _with_fix(
            exc, f"Atlassian's token endpoint did not answer usefully; run `{LOGIN}` again in a few minutes"
        ) from None


def _discover(jira: JiraConnection, auth: JiraOAuth, manager: OAuthTokenManager) -> str:
    client = build_client(str(auth.api_url).rstrip("/"), jira.http, auth=BearerAuth(manager, system="jira"))
    session = ApiSession(client, system="jira", settings=jira.http)
    try:
        return discover_cloud_id(session, jira.site_url)
    except AuthError as exc:
        raise _with_fix(
            exc, f"set jira.url to the site the grant covers, or run `{LOGIN}` as a user with access to that site"
        ) from None
    except TransientError as exc:
        raise _with_fix(exc, f"nothing was stored; run `{LOGIN}` again in a few minutes") from None
    finally:
        session.close()
