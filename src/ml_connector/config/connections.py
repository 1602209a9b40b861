"""Connection settings for IFS Cloud and Jira Cloud: one small model per concern."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

# IFS refuses a page size of 5000 or more; stay strictly below it.
IFS_MAX_PAGE_SIZE = 4999

# Secrets published with the simulators, the demo and old example configs: anyone can sign with them.
SIMULATOR_SECRETS = frozenset({"sim-webhook-secret", "sim-secret", "sim-api-token"})
MIN_WEBHOOK_SECRET_BYTES = 32


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal (brackets allowed); a name that merely resolves there is not enough."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class StrictModel(BaseModel):
    """Base of every configuration model: unknown keys are errors (a typo is never silently ignored), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(StrictModel):
    """Timeouts, retry bounds and client-side pacing for one far-side system."""

    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=20)
    max_retry_seconds: float = Field(default=120.0, gt=0)
    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=30.0, gt=0)
    requests_per_minute: float | None = Field(
        default=None,
        gt=0,
        description="Client-side pacing per host; None sends as fast as the server allows.",
    )
    burst: int = Field(default=10, ge=1)
    method_rates: dict[str, float] = Field(
        default_factory=dict,
        description="Client-side pacing per endpoint (method + path template), in requests/s by HTTP method.",
    )
    max_in_flight: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Most requests of one endpoint in flight at once; the adaptive limit grows up to it.",
    )
    initial_in_flight: int = Field(default=4, ge=1, description="Where the adaptive in-flight limit starts.")
    verify_tls: bool = True


# Jira's burst limits per endpoint (jira-api.md §9): shared by every app and token on the tenant, so the connector
# stays at them rather than spending 429s to find them.
JIRA_METHOD_RATES: dict[str, float] = {"GET": 100.0, "POST": 100.0, "PUT": 50.0, "DELETE": 50.0}


class JiraHttpSettings(HttpSettings):
    """``HttpSettings`` with Jira's documented burst limits as the default per-method pacing."""

    method_rates: dict[str, float] = Field(
        default_factory=lambda: dict(JIRA_METHOD_RATES),
        description="Client-side pacing per endpoint (method + path template), in requests/s by HTTP method.",
    )


class IfsHttpSettings(HttpSettings):
    """``HttpSettings`` whose in-flight limit starts where a whole pass's reads need it: each of its two ends reads
    a page's lines in four ranges at once (``engine/outbound.py``), so 8 line reads go out together at the start."""

    initial_in_flight: int = Field(default=8, ge=1, description="Where the adaptive in-flight limit starts.")


class IfsConnection(StrictModel):
    """An IFS Cloud tenant reached through IAM client credentials."""

    url: AnyHttpUrl
    realm: str = Field(min_length=1)
    client_id: str = Field(min_length=1, max_length=20)
    client_secret: SecretStr
    scope: str = "openid microprofile-jwt"
    page_size: int = Field(default=1000, ge=1)
    # The IANA zone the IFS server (site) keeps its wall time in: needed to read and filter date-time attributes
    # that are not time-zone aware (flows with cursor_time_zone_aware: false). `check` compares it with IFS.
    server_time_zone: str = "UTC"
    http: HttpSettings = IfsHttpSettings()

    @field_validator("http", mode="before")
    @classmethod
    def _ifs_defaults(cls, value: object) -> object:
        """Keys given in the file start from the IFS defaults (its in-flight start), not the generic ones."""
        return IfsHttpSettings.model_validate(value) if isinstance(value, dict) else value

    @field_validator("server_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: give an IANA name such as 'America/Chicago'") from None
        return value

    @property
    def server_zone(self) -> ZoneInfo:
        return ZoneInfo(self.server_time_zone)

    @field_validator("page_size")
    @classmethod
    def _below_ifs_cap(cls, value: int) -> int:
        if value > IFS_MAX_PAGE_SIZE:
            raise ValueError(f"must be below 5000 (IFS refuses larger pages), got {value}")
        return value

    @property
    def base_url(self) -> str:
        return str(self.url).rstrip("/")


class JiraBasicAuth(StrictModel):
    """Atlassian account email with an API token."""

    kind: Literal["basic"] = "basic"
    email: str = Field(min_length=3)
    api_token: SecretStr


class JiraOAuth(StrictModel):
    """OAuth 2.0 (3LO) with rotating refresh tokens; the tokens themselves live in the credential store."""

    kind: Literal["oauth"] = "oauth"
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    refresh_token: SecretStr | None = Field(
        default=None,
        description="Initial refresh token; after first use the rotated one is kept in the store.",
    )
    auth_url: AnyHttpUrl = AnyHttpUrl("https://auth.atlassian.com")
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.atlassian.com")
    cloud_id: str | None = None


JiraAuth = Annotated[JiraBasicAuth | JiraOAuth, Field(discriminator="kind")]


class JiraConnection(StrictModel):
    """A Jira Cloud site."""

    url: AnyHttpUrl
    auth: JiraAuth
    http: HttpSettings = JiraHttpSettings()

    simulator: bool = Field(
        default=False,
        description="This Jira is the built-in simulator (the demo and tests). Allowed only on a loopback jira.url; "
        "it is the one case where a simulator's published webhook secret is accepted.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of an admin webhook (Basic auth); verifies X-Hub-Signature. At least 32 bytes, "
        "random (`ml-connector init` writes one).",
    )

    @field_validator("http", mode="before")
    @classmethod
    def _jira_defaults(cls, value: object) -> object:
        """Keys given in the file start from Jira's defaults (its burst limits), not the generic ones."""
        return JiraHttpSettings.model_validate(value) if isinstance(value, dict) else value

    @field_validator("simulator")
    @classmethod
    def _simulator_on_loopback(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("url")
        if value and url is not None and not is_loopback_host(url.host):
            raise ValueError(
                f"simulator: true needs a loopback jira.url (localhost, 127.0.0.1, ::1), not {url.host}; "
                "remove it for a real Jira site"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or info.data.get("simulator"):
            return value
        problem = webhook_secret_problem(value.get_secret_value())
        if problem:
            raise ValueError(
                f"{problem}; generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'` "
                "(or `ml-connector init`), set it here or in JIRA_WEBHOOK_SECRET, and paste the same value into the "
                "Jira webhook's Secret field"
            )
        return value

    @property
    def site_url(self) -> str:
        return str(self.url).rstrip("/")


def webhook_secret_problem(secret: str) -> str | None:
    """Why ``secret`` cannot protect a public webhook receiver, or None when it can."""
    if secret in SIMULATOR_SECRETS:
        return "the webhook secret is a published simulator default, so anyone can sign deliveries with it"
    size = len(secret.encode("utf-8"))
    if size < MIN_WEBHOOK_SECRET_BYTES:
        return f"the webhook secret is {size} bytes; at least {MIN_WEBHOOK_SECRET_BYTES} random bytes are required"
    return None
