"""Options and fault knobs of the Jira Cloud simulator (all defaulted, so ``JiraSimOptions()`` is a working site)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ml_connector.sim.servertime import ServerTimeProfile
from ml_connector.sim.wire import FaultKind

# jira-api.md §9, burst row: "default GET 100, POST 100, PUT 50, DELETE 50 rps", per tenant x endpoint x method. The
# documented per-endpoint overrides (e.g. GET /issue/{key} 150) are not modelled: they only raise a limit.
DOCUMENTED_BURST: dict[str, float] = {"GET": 100.0, "POST": 100.0, "PUT": 50.0, "DELETE": 50.0}


class FailRule(BaseModel):
    """A fault for the next ``count`` requests whose path contains ``path_contains`` (and whose method is ``method``,
    when given); a large count makes it persistent.

    ``kind`` is one of :data:`ml_connector.sim.wire.FaultKind`; ``status`` (the default) answers ``status``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind = "status"
    status: int = 503
    count: int = 1
    retry_after: float | None = None
    path_contains: str = ""
    method: str | None = None
    hang_seconds: float = Field(default=30.0, ge=0)
    # The ``RateLimit-Reason`` of an injected 429 (jira-api.md §9): burst (the endpoint), per-issue-on-write, quota.
    reason: str = "jira-burst-based"

    def matches(self, method: str, path: str) -> bool:
        return self.path_contains in path and (self.method is None or self.method.upper() == method.upper())


class Faults(BaseModel):
    """Fault and load knobs; ``PUT /_sim/faults`` updates any subset. ``None`` switches a limit off."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = 0
    # Each answer travels back up to this much longer (random): answers of concurrent calls arrive late and out of
    # order, as over a congested network or to a busy client.
    answer_jitter_ms: int = Field(0, ge=0)
    # Modelled server time per operation (ml_connector.sim.servertime.PROFILES), on top of latency_ms; None: none.
    server_time_profile: ServerTimeProfile | None = None
    error_5xx_rate: float = Field(0.0, ge=0, le=1)
    # A token bucket per endpoint (method + path template). None: off; a number: that rate for every method; a
    # mapping of method to rate (methods not in it are not limited); "documented": DOCUMENTED_BURST.
    burst_per_second: float | dict[str, float] | Literal["documented"] | None = None
    per_issue_writes_per_second: float | None = None  # per issue token bucket for writes
    retry_after_seconds: float | None = 1.0  # None: 429s carry no Retry-After (Jira does not always send one)
    index_lag_seconds: float = Field(0.0, ge=0)
    # Each change waits index_lag_seconds plus up to this many more (random), so changes show up out of order.
    index_lag_jitter_seconds: float = Field(0.0, ge=0)
    duplicate_delivery_rate: float = Field(0.0, ge=0, le=1)
    access_token_lifetime_seconds: int = 3600
    # The points quota of OAuth traffic (jira-api.md §9): pool sizes per window (None: no such pool), the window
    # (an hour on the real service, aligned to the top of the UTC hour; shorter in tests), and the ``Beta-`` header
    # prefix used before enforcement.
    quota_global_points: int | None = Field(default=None, ge=0)
    quota_tenant_points: int | None = Field(default=None, ge=0)
    quota_window_seconds: float = Field(default=3600.0, gt=0)
    quota_beta_headers: bool = False
    fail_next: list[FailRule] = Field(default_factory=list)
    seed: int = 42

    @field_validator("burst_per_second")
    @classmethod
    def _upper_methods(cls, value: object) -> object:
        """Method names in a mapping are matched upper case; a rate must be positive."""
        if isinstance(value, dict):
            if any(rate <= 0 for rate in value.values()):
                raise ValueError("every rate must be > 0 (leave a method out to not limit it)")
            return {str(method).upper(): rate for method, rate in value.items()}
        if isinstance(value, int | float) and value <= 0:
            raise ValueError("must be > 0 (null switches the limit off)")
        return value


class JiraSimOptions(BaseModel):
    """Identity of the simulated site and its credentials (test values, never real secrets)."""

    model_config = ConfigDict(extra="forbid")

    email: str = "connector@example.com"
    api_token: str = "sim-api-token"
    oauth_client_id: str = "sim-oauth-client"
    oauth_client_secret: str = "sim-oauth-secret"
    cloud_id: str = "11111111-2222-3333-4444-555555555555"
    site_name: str = "ml-connector-sim"
    webhook_secret: str = "sim-webhook-secret"
    # An admin webhook configured "in the UI" at start-up, signed with ``webhook_secret`` (None: none).
    admin_webhook_url: str | None = None
    time_zone: str = "America/Los_Angeles"
    seed: int = 42
    faults: Faults = Field(default_factory=Faults)
    # Real seconds between webhook delivery retries (Jira waits minutes; tests cannot).
    webhook_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0, 2.0, 4.0])
    webhook_timeout_seconds: float = 5.0
    webhook_ttl_days: int = 30
    max_webhooks_per_app: int = 5
