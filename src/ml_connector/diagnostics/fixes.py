"""Which config key to fix for a credential or connection error: one mapping for `check` and for `sync`/`run`.

A failed or warned record's fix is ``reason_fix`` (the table is ``reasons.fix_for``)."""

from __future__ import annotations

from collections.abc import Iterable

from ml_connector import reasons as r
from ml_connector.config.models import ConnectorConfig
from ml_connector.errors import AuthError, ConnectorError, TransientError, Unavailable

API_TOKEN_URL = "https://id.atlassian.com/manage-profile/security/api-tokens"


def ifs_credentials_fix(config: ConnectorConfig) -> str:
    cfg = config.ifs
    return (
        f"check ifs.client_id ({cfg.client_id}) and ifs.client_secret (IFS_CLIENT_SECRET) for realm "
        f"{cfg.realm}: the IAM client must exist, be enabled and have a service account"
    )


def ifs_connection_fix(config: ConnectorConfig) -> str:
    return f"check ifs.url ({config.ifs.base_url}) and ifs.realm ({config.ifs.realm})"


def jira_credentials_fix(config: ConnectorConfig) -> str:
    if config.jira.auth.kind == "basic":
        return (
            f"check jira.auth.email and jira.auth.api_token (JIRA_API_TOKEN; create one at {API_TOKEN_URL}) "
            "for that account"
        )
    return (
        "check jira.auth.client_id / jira.auth.client_secret; if the grant was revoked, expired or never given, "
        "run `ml-connector jira login`"
    )


def jira_connection_fix(config: ConnectorConfig) -> str:
    return f"check jira.url ({config.jira.url})"


def config_fix(config: ConnectorConfig, error: BaseException) -> str | None:
    """The fix naming the config key for refused credentials or a host never reached (DNS, refused, TLS), or None
    when the error is not one a config key explains."""
    if not isinstance(error, ConnectorError):
        return None
    system = error.system or ""
    unreachable = isinstance(error, Unavailable) and error.not_sent
    if system.startswith("ifs"):
        if isinstance(error, AuthError):
            return ifs_credentials_fix(config)
        token_endpoint_wrong = system == "ifs-iam" and not isinstance(error, TransientError)  # e.g. 404: wrong realm
        return ifs_connection_fix(config) if unreachable or token_endpoint_wrong else None
    if system == "jira":
        if isinstance(error, AuthError):
            return jira_credentials_fix(config)
        return jira_connection_fix(config) if unreachable else None
    return None


# -- failed and warned records ----------------------------------------------------------------------------------


def reason_fix(config: ConnectorConfig, flow: str, code: str, values: Iterable[str | None] = ()) -> str:
    """What to do about failed or warned records of ``flow`` with reason ``code`` and the varying ``values``: the
    config path to change, or the command to run next. The table is ``reasons.fix_for`` (the web, which must not
    import the diagnostics, reads it there too)."""
    return r.fix_for(config.flows, flow, code, values)
