"""Options of the IFS Cloud simulator: seed sizes, identity, behaviour switches, and the fault knobs."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ml_connector.sim.ifs.zones import server_zone
from ml_connector.sim.servertime import ServerTimeProfile
from ml_connector.sim.wire import FaultKind

SEED_FIELDS = frozenset(
    {
        "seed",
        "sites",
        "suppliers",
        "persons",
        "projects",
        "purchase_orders",
        "work_orders",
        "anchor",
        "time_zone",
        "custom_attributes_time_zone_aware",
    }
)


class FailNext(BaseModel):
    """One scripted failure of the next ``count`` matching requests (a large count makes it persistent).

    ``kind`` is one of :data:`ml_connector.sim.wire.FaultKind` (``status``: answer ``status``, 0 being an alias of
    ``drop_before``). A rule matches when ``path_contains`` is in the path (None: any projection call) and, if
    ``method`` is given, the request's method is that one.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind = "status"
    status: int = Field(default=500, ge=0, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: float | None = Field(default=None, ge=0)
    path_contains: str | None = None
    method: str | None = None
    hang_seconds: float = Field(default=30.0, ge=0)
    code: str | None = None
    message: str | None = None

    @property
    def effective_kind(self) -> FaultKind:
        return "drop_before" if self.kind == "status" and self.status == 0 else self.kind

    def matches(self, method: str, path: str, *, projection: bool) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return projection if self.path_contains is None else self.path_contains in path


class FaultSettings(BaseModel):
    """Fault injection, changed at run time through ``PUT /_sim/faults`` or ``IfsSimulator.set_faults``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(default=0, ge=0)
    # Modelled server time per operation (ml_connector.sim.servertime.PROFILES), on top of latency_ms; None: none.
    server_time_profile: ServerTimeProfile | None = None
    rate_limit_per_minute: int | None = Field(default=1000, ge=1)  # per client id; None disables the budget
    # the 429's Retry-After: "window" = seconds until the window frees a slot; a number; None = no header
    retry_after_seconds: float | Literal["window"] | None = "window"
    error_503_rate: float = Field(default=0.0, ge=0, le=1)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    concurrent_edit_rate: float = Field(default=0.0, ge=0, le=1)
    token_lifetime_seconds: int | None = Field(default=None, ge=1)  # None: IfsSimOptions.token_expires_in
    fail_next: list[FailNext] = Field(default_factory=list)
    seed: int = 0

    @field_validator("retry_after_seconds", mode="before")
    @classmethod
    def _retry_after(cls, value: Any) -> Any:
        """One clear message instead of pydantic's one-per-union-member list."""
        if value is None or value == "window":
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
            raise ValueError(f'must be a finite number >= 0, "window" or null, got {value!r}')
        return float(value)


class IfsSimOptions(BaseModel):
    """Everything that shapes a simulator instance; all fields have defaults."""

    model_config = ConfigDict(extra="forbid")

    # seed data
    seed: int = 42
    sites: int = Field(default=3, ge=1, le=99)
    suppliers: int = Field(default=20, ge=1)
    persons: int = Field(default=20, ge=0)  # total; the shared people of ml_connector.sim.people always exist
    projects: int = Field(default=8, ge=0)
    purchase_orders: int = Field(default=200, ge=0)
    work_orders: int = Field(default=50, ge=0)
    anchor: dt.datetime = dt.datetime(2025, 6, 30, tzinfo=dt.UTC)  # seeded timestamps lie in the year before it
    # identity
    realm: str = "mlc"
    client_id: str = "ml-connector"
    client_secret: str = "sim-secret"
    extra_clients: dict[str, str] = Field(default_factory=dict)  # more client id -> secret pairs (own budgets)
    token_expires_in: int = Field(default=180, ge=1)
    # behaviour
    max_page_size: int = Field(default=1000, ge=1, le=4999)  # server page when the client sends no maxpagesize
    page_size_limit: int = Field(default=5000, ge=2)  # $top or maxpagesize at or above this is refused (400)
    next_links: bool = True  # False: truncate silently to the page size, no @odata.nextLink
    strict_if_match: bool = False  # True: refuse PATCH without If-Match and If-Match: * (428), unlike IFS
    time_zone: str = "UTC"  # the server's zone (IANA name): wall time of naive values and of header-less requests
    custom_attributes_time_zone_aware: bool = True  # False: Cf_* date-times are the server's wall time (zones.py)
    request_log_limit: int = Field(default=100_000, ge=0)  # entries kept; counts stay exact
    faults: FaultSettings = Field(default_factory=FaultSettings)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        server_zone(value)
        return value
