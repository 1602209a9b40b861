"""The whole connector configuration: connections, store, flows and their mappings.

One small model per concern. ``load_config`` reads YAML, interpolates ``${VAR}`` and reports problems with the YAML
path (``flows[1].mapping.priority.map``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from ml_connector.config.connections import IFS_MAX_PAGE_SIZE, IfsConnection, JiraConnection, StrictModel
from ml_connector.config.deployment import (
    CONNECTION_NAME_PATTERN,
    DEFAULT_CONNECTION,
    connection_items,
    select,
    with_path,
)
from ml_connector.config.loader import read_yaml, validate
from ml_connector.config.retired import drop_retired
from ml_connector.errors import ConfigError
from ml_connector.reasons import flow_path
from ml_connector.template import check_template

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _duration(value: Any) -> Any:
    """Accept ``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"2d"`` as seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h, 2d)")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class StoreConfig(StrictModel):
    url: str | None = Field(
        default=None, description="SQLAlchemy URL; default a SQLite file ml-connector.sqlite beside the config file."
    )
    credentials_key: SecretStr | None = Field(
        default=None,
        description="Fernet key for stored OAuth tokens; default from ML_CONNECTOR_KEY or a 0600 key file.",
    )


MIN_DASHBOARD_TOKEN_CHARS = 16


class WebConfig(StrictModel):
    """The web app. Without tokens the dashboard answers loopback clients only; with them, anyone who signs in."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    admin_token: SecretStr | None = Field(default=None, description="Signs in with every right (Sync now, Pause, ...).")
    read_token: SecretStr | None = Field(default=None, description="Signs in to see the pages, not to act.")
    public_url: str | None = Field(default=None, description="URL Jira uses to reach /webhooks/jira.")
    public_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (optionally host:port) the dashboard answers to besides public_url's host and "
        "localhost; any other Host header is refused (DNS rebinding).",
    )
    tls_proxy: bool = Field(
        default=False,
        description="A TLS-terminating proxy sits in front: trust its X-Forwarded-Proto for HSTS and secure cookies.",
    )

    @field_validator("admin_token", "read_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_DASHBOARD_TOKEN_CHARS:
            raise ValueError(
                f"a dashboard token needs at least {MIN_DASHBOARD_TOKEN_CHARS} characters; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
            )
        return value

    @model_validator(mode="after")
    def _roles(self) -> WebConfig:
        admin = self.admin_token.get_secret_value() if self.admin_token else None
        read = self.read_token.get_secret_value() if self.read_token else None
        if read and not admin:
            raise ValueError("read_token needs an admin_token as well (someone must be able to act)")
        if read and read == admin:
            raise ValueError("read_token and admin_token must differ")
        return self


class RunnerConfig(StrictModel):
    kind: Literal["local", "procrastinate"] = Field(
        default="local",
        description="local: one daemon runs every flow in process. procrastinate: `run` defers jobs and "
        "`ml-connector worker` processes run them (PostgreSQL store only).",
    )
    lease_ttl: Seconds = 60.0
    stalled_after: Seconds = Field(
        default=30.0,
        description="procrastinate: a worker silent this long is taken as dead and its jobs are run again.",
    )
    rate_buckets: Literal["local", "postgres"] = Field(
        default="local",
        description="Where the client-side rate budgets live: 'local' paces each process on its own; 'postgres' "
        "shares them through the (PostgreSQL) store, so several processes stay within one IFS client's and one "
        "Jira site's limits together.",
    )


class SyncPolicy(StrictModel):
    """Failure handling shared by all flows (DESIGN §4.3)."""

    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_initial: Seconds = 60.0
    retry_max: Seconds = 6 * 3600.0
    deleted_issue: Literal["recreate", "ignore"] = "recreate"
    reconcile_settle: Seconds = Field(
        default=60.0, description="How long Jira search may lag behind a create; an unconfirmed create waits this long."
    )
    deleted_issue_grace: Seconds = Field(
        default=3600.0,
        description="A 404 on an edit may be a deletion or a visibility glitch (permissions, archived project): the "
        "record waits this long, and at least until a later run, before a second read and an identity-label search "
        "decide whether the issue is really gone.",
    )
    max_not_found_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="If more than this share of a run's edits get 404, the run recreates nothing and raises a flow "
        "alert (status, dashboard, metric): so many vanishing issues point at a permission or project change.",
    )
    bulk_size: int = Field(default=50, ge=1, le=50)
    bulk_concurrency: int = Field(
        default=32,
        ge=1,
        le=64,
        description="Most bulk-create calls in flight at once (the adaptive limit, capped by jira.http.max_in_flight, "
        "decides how many actually are).",
    )
    edit_concurrency: int = Field(
        default=32,
        ge=1,
        le=64,
        description="Most issue edits in flight at once, each to a different issue.",
    )
    pipeline_pages: int = Field(
        default=2,
        ge=0,
        le=4,
        description="Pages whose Jira writes may still be in flight while the next page is read from IFS "
        "(0: read, write, then read the next page).",
    )
    read_both_ends: bool = Field(
        default=True,
        description="A pass that reads a whole flow in key order (the first run, --full, snapshot flows) reads it "
        "from both ends at once and stops where the two meet: twice the rows per second from IFS, for at most two "
        "pages read twice. Needs pipeline_pages above 0.",
    )
    rate_limit_wait_max: Seconds = Field(
        default=900.0,
        description="Total time one run may spend waiting out rate limits (429); the calls that meet a 429 wait "
        "and resend without using up their attempts. Only past this budget does a 429 fail a record (retried on a "
        "later run).",
    )


class ValueMap(StrictModel):
    """Look a source value up in ``map``; fall back to ``default`` (None: the field is left unset)."""

    source: str = Field(description="Template or field path giving the lookup value, e.g. 'supplier.Cf_Supplier_Tier'.")
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None


class AssigneeMapping(StrictModel):
    source: str = Field(description="IFS field holding the person id, e.g. BuyerCode or WorkLeaderSign.")
    emails: dict[str, str] = Field(default_factory=dict, description="Static person id → email map (wins over IFS).")
    from_persons: bool = Field(default=True, description="Look the email up in the IFS persons lookup.")
    fallback_email: str | None = Field(default=None, description="Assignee when the person cannot be resolved.")


class IssueMapping(StrictModel):
    """How one IFS record becomes one Jira issue."""

    project: ValueMap
    issue_type: str
    summary: str = Field(min_length=1)
    description: str | None = None
    priority: ValueMap | None = None
    assignee: AssigneeMapping | None = None
    custom_fields: dict[str, str | ValueMap] = Field(
        default_factory=dict,
        description="Jira field name (or customfield_N, or 'Name:type' to pick among same-named fields) → a template, "
        "or a value map {source, map, default} for select fields whose options differ from IFS codes.",
    )
    labels: list[str] = Field(default_factory=list, description="Templates; each must render to a label.")

    def templates(self) -> Iterator[tuple[str, str, bool]]:
        """Every template of the mapping: its path below ``mapping``, its text, and whether it is a value source
        (which may also be a bare expression such as ``supplier.Cf_Supplier_Tier``)."""
        for name, spec in (("project", self.project), ("priority", self.priority), ("assignee", self.assignee)):
            if spec is not None:
                yield f"{name}.source", spec.source, True
        yield "summary", self.summary, False
        if self.description is not None:
            yield "description", self.description, False
        for name, field in self.custom_fields.items():
            if isinstance(field, ValueMap):
                yield f"custom_fields.{name}.source", field.source, True
            else:
                yield f"custom_fields.{name}", field, False
        for index, label in enumerate(self.labels):
            yield f"labels[{index}]", label, False


class StatusWrite(StrictModel):
    value: str | None = Field(default=None, description="Value written to the status field (default: the status).")
    action: str | None = Field(default=None, description="Bound action to call, e.g. PurchaseOrder_Close.")


class WritebackMapping(StrictModel):
    """How a Jira status goes back into IFS."""

    enabled: bool = True
    entity_set: str | None = Field(default=None, description="Writable entity set; default the flow's entity set.")
    status_field: str | None = "Cf_Jira_Status"
    key_field: str | None = "Cf_Jira_Key"
    statuses: dict[str, StatusWrite] = Field(default_factory=dict, description="Jira status name → IFS write.")
    categories: dict[str, StatusWrite] = Field(
        default_factory=dict, description="Jira status category key (new, indeterminate, done) → IFS write."
    )
    write_unmapped: bool = Field(default=True, description="Write the raw status name when nothing maps it.")
    initial: bool = Field(
        default=False,
        description="Also write the status (and key) of new issues nobody has moved yet. Off by default: it costs "
        "one IFS write per created issue.",
    )
    lookback: Seconds = 120.0

    @field_validator("statuses", "categories", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # statuses: {Done: Closed} is shorthand for {Done: {value: Closed}}
        if isinstance(value, dict):
            return {k: ({"value": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value


class LinesConfig(StrictModel):
    """A child set read once per page (e.g. PO lines carrying GL account and cost center code parts)."""

    entity_set: str
    parent_key: str
    select: list[str] = Field(default_factory=list)
    orderby: list[str] = Field(default_factory=list)


class LookupConfig(StrictModel):
    entity_set: str
    key: str
    select: list[str] = Field(default_factory=list)
    filter: str | None = None
    ttl: Seconds = 3600.0


Schedule = str  # "hourly", "daily", a 5-field cron expression, or "every 10m"


class FlowConfig(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    preset: Literal["purchase_orders", "work_orders"] | None = None
    entity_set: str
    key: str
    key_type: Literal["string", "int"] = "string"
    select: list[str] = Field(default_factory=list)
    filter: str | None = None
    detection: Literal["cursor", "snapshot"] = "cursor"
    cursor_field: str | None = None
    # False: the cursor attribute is not time-zone aware (often a Cf_* custom attribute): it holds the IFS server's
    # wall time (ifs.server_time_zone), whatever the time-zone header says.
    cursor_time_zone_aware: bool = True
    lookback: Seconds = 300.0
    page_size: int | None = Field(default=None, ge=1, le=IFS_MAX_PAGE_SIZE)
    schedule: Schedule | None = "hourly"
    enabled: bool = True
    lines: LinesConfig | None = None
    supplier_field: str | None = Field(default=None, description="Field joined to the suppliers lookup.")
    mapping: IssueMapping
    writeback: WritebackMapping = WritebackMapping()

    def check_templates(self, path: str) -> None:
        """Compile every template of the mapping; ``ConfigError`` naming ``path.mapping.<key>`` for a bad one."""
        fields = self.read_fields() if self.select else None  # no select: every field is read, names unknown
        for where, source, source_of in self.mapping.templates():
            check_template(source, path=f"{path}.mapping.{where}", fields=fields, source_of=source_of)

    def read_fields(self) -> list[str]:
        """``$select`` for the flow: the configured fields plus the key and cursor field the engine relies on."""
        return list(dict.fromkeys([*self.select, self.key, *([self.cursor_field] if self.cursor_field else [])]))

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            merged = dict(PRESETS[data["preset"]])
            for key, value in data.items():
                base = merged.get(key)
                merged[key] = {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
            return merged
        return data

    @model_validator(mode="after")
    def _cursor_needs_field(self) -> FlowConfig:
        if self.detection == "cursor" and not self.cursor_field:
            raise ValueError("detection 'cursor' needs cursor_field (a change or creation timestamp)")
        return self

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_schedule(value)
        return value


PRESETS: dict[str, dict[str, Any]] = {
    "purchase_orders": {
        "entity_set": "PurchaseOrderHandling.svc/PurchaseOrderSet",
        "key": "OrderNo",
        "key_type": "string",
        "cursor_field": "Cf_Changed_At",
        "supplier_field": "VendorNo",
    },
    "work_orders": {
        "entity_set": "ActiveWorkOrdersHandling.svc/ActiveSeparateSet",
        "key": "WoNo",
        "key_type": "int",
        "cursor_field": "Cf_Changed_At",
        "writeback": {"entity_set": "PrepareWorkOrderHandling.svc/ActiveSeparateSet"},
    },
}


class LookupsConfig(StrictModel):
    suppliers: LookupConfig | None = LookupConfig(
        entity_set="SupplierHandling.svc/SupplierInfoGeneralSet", key="SupplierId"
    )
    persons: LookupConfig | None = LookupConfig(entity_set="PersonHandling.svc/PersonInfoSet", key="PersonId")
    projects: LookupConfig | None = None


WEBHOOK_PATH = "/webhooks/jira"  # where the receiver listens, under web.public_url


def webhook_path(connection: str) -> str:
    """Where Jira delivers a connection's events: ``/webhooks/jira`` for ``default`` (the single-connection path,
    unchanged), ``/webhooks/jira/<connection>`` for any other."""
    return WEBHOOK_PATH if connection == DEFAULT_CONNECTION else f"{WEBHOOK_PATH}/{connection}"


class WebhookConfig(StrictModel):
    """The Jira webhook receiver (POST /webhooks/jira); the route exists only when ``enabled``."""

    enabled: bool = False
    # Jira sends a bulk change as a burst from a few addresses: generous, but bounded (HMAC over 1 MiB is cheap).
    rate_per_second: float = Field(default=50.0, gt=0, description="Sustained deliveries per source address.")
    burst: int = Field(default=200, ge=1, description="Deliveries a source may send at once before being slowed.")


class ConnectorConfig(StrictModel):
    """One connection (an IFS tenant and a Jira site) with the settings the deployment shares (store, web, runner,
    logging): what one ``Connector`` runs."""

    name: str = Field(
        default=DEFAULT_CONNECTION,
        pattern=CONNECTION_NAME_PATTERN,
        description="The connection's name (lower-case letters, digits, - and _; at most 40): scopes store rows, "
        "metrics, logs, dashboard pages and --connection.",
    )
    ifs: IfsConnection
    jira: JiraConnection
    store: StoreConfig = StoreConfig()
    web: WebConfig = WebConfig()
    runner: RunnerConfig = RunnerConfig()
    sync: SyncPolicy = SyncPolicy()
    lookups: LookupsConfig = LookupsConfig()
    webhooks: WebhookConfig = WebhookConfig()
    flows: list[FlowConfig] = Field(min_length=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] | None = None  # None: console on a terminal; json for `run` as a service
    _deprecations: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _accept_retired(cls, data: Any, handler: ModelWrapValidatorHandler[ConnectorConfig]) -> ConnectorConfig:
        """Drop retired keys (config/retired.py) before the strict models see them; keep a note for each."""
        cleaned, notes = drop_retired(data)
        config = handler(cleaned)
        if notes:
            config._deprecations = notes
        return config

    def deprecations(self) -> tuple[str, ...]:
        """One note per retired key the config file still sets (logged as a warning when the file is loaded)."""
        return self._deprecations

    @field_validator("flows")
    @classmethod
    def _unique_names(cls, flows: list[FlowConfig]) -> list[FlowConfig]:
        seen: set[str] = set()
        for flow in flows:
            if flow.name in seen:
                raise ValueError(f"flow name {flow.name!r} is used twice")
            seen.add(flow.name)
        return flows

    @model_validator(mode="after")
    def _postgres_only_settings(self) -> ConnectorConfig:
        """The job queue and shared rate buckets live in the PostgreSQL store; with SQLite they cannot exist."""
        # A ConfigError (not a ValueError) passes through pydantic with its own YAML path.
        if (self.store.url or "").startswith(("postgresql", "postgres:")):
            return self
        if self.runner.kind == "procrastinate":
            raise ConfigError(
                "'procrastinate' keeps its jobs in PostgreSQL: set store.url to a postgresql+psycopg:// "
                "URL, or use runner.kind 'local'",
                path="runner.kind",
            )
        if self.runner.rate_buckets == "postgres":
            raise ConfigError(
                "'postgres' rate buckets are shared through the PostgreSQL store: set store.url to a "
                "postgresql+psycopg:// URL, or use runner.rate_buckets 'local'",
                path="runner.rate_buckets",
            )
        return self

    @model_validator(mode="after")
    def _compile_templates(self) -> ConnectorConfig:
        # A ConfigError (not a ValueError) passes through pydantic with the exact path of the template.
        names = [flow.name for flow in self.flows]
        for flow in self.flows:
            flow.check_templates(flow_path(names, flow.name))
        return self

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret (any ``SecretStr`` anywhere in the tree), for verbatim redaction.

        Walking the model instead of listing fields means a new secret setting is redacted without anyone
        remembering to add it here.
        """
        found: dict[str, None] = {}
        _collect_secrets(self, found)
        return tuple(found)

    def flow(self, name: str) -> FlowConfig:
        for flow in self.flows:
            if flow.name == name:
                return flow
        known = ", ".join(f.name for f in self.flows)
        raise ConfigError(f"no flow named {name!r} (configured: {known})", path="flows")


def _collect_secrets(value: Any, found: dict[str, None]) -> None:
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            found[value.get_secret_value()] = None
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect_secrets(getattr(value, name), found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_secrets(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_secrets(item, found)


def parse_schedule(value: str) -> tuple[str, Any]:
    """``("interval", seconds)`` or ``("cron", "m h dom mon dow")``; raises ValueError for anything else."""
    text = value.strip().lower()
    if text == "hourly":
        return ("cron", "0 * * * *")
    if text == "daily":
        return ("cron", "0 2 * * *")
    if text.startswith("every "):
        return ("interval", _duration(text[6:]))
    if len(value.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value.strip(), timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return ("cron", value.strip())
    raise ValueError(f"schedule {value!r} is not 'hourly', 'daily', 'every <duration>' or a 5-field cron expression")


def load_connections(
    path: Path, *, env: dict[str, str] | None = None, store_only: bool = False
) -> list[ConnectorConfig]:
    """Every connection of the file, in file order (one, named ``default``, for a single-connection file)."""
    data = read_yaml(path, env=env, store_only=store_only)
    configs = []
    for root, item in connection_items(data):
        try:
            config = validate(ConnectorConfig, item, root=root)
        except ConfigError as exc:
            raise with_path(exc, root) from None
        configs.append(_default_store(config, path))
    return configs


def load_config(
    path: Path, *, env: dict[str, str] | None = None, store_only: bool = False, connection: str | None = None
) -> ConnectorConfig:
    """One connection: ``connection`` by name, or the only one. ``store_only``: for commands that only read the
    store, unset secrets are allowed (``interpolate``)."""
    configs = load_connections(path, env=env, store_only=store_only)
    name = select([config.name for config in configs], connection)
    return next(config for config in configs if config.name == name)


def _default_store(config: ConnectorConfig, path: Path) -> ConnectorConfig:
    if config.store.url is not None:
        return config
    default_db = (path.parent / "ml-connector.sqlite").resolve()
    return config.model_copy(
        update={"store": StoreConfig(url=f"sqlite:///{default_db}", credentials_key=config.store.credentials_key)}
    )  # private attributes (the deprecation notes) are copied too
