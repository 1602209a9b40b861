"""Regenerate the key tables in docs/configuration.md from the pydantic models.

    .venv/bin/python docs/config_reference.py          # rewrite the generated block in docs/configuration.md
    .venv/bin/python docs/config_reference.py --check  # exit 1 if the block is out of date

Types, defaults, constraints and descriptions come from ``ml_connector.config``. A field without a ``description``
in the model takes its meaning from ``NOTES`` below. The script fails when a field has no meaning at all, when a
note names a field that no longer exists, or when a configuration model is reachable but has no table, so a new
or renamed key cannot slip into the code without a line here.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ml_connector.config import connections as c
from ml_connector.config import models as m

DOC = Path(__file__).with_name("configuration.md")
BEGIN = "<!-- BEGIN GENERATED KEY TABLES (docs/config_reference.py) -->"
END = "<!-- END GENERATED KEY TABLES -->"

# (heading, model); the order is the order in the document.
SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("Top level", m.ConnectorConfig),
    ("`ifs`: the IFS Cloud tenant", c.IfsConnection),
    ("`ifs.http` and `jira.http`: timeouts, retries, pacing", c.HttpSettings),
    ("`jira`: the Jira Cloud site", c.JiraConnection),
    ("`jira.auth` with `kind: basic`", c.JiraBasicAuth),
    ("`jira.auth` with `kind: oauth`", c.JiraOAuth),
    ("`store`", m.StoreConfig),
    ("`web`", m.WebConfig),
    ("`runner`", m.RunnerConfig),
    ("`sync`: failure policy shared by all flows", m.SyncPolicy),
    ("`lookups`", m.LookupsConfig),
    ("`lookups.<name>` (`suppliers`, `persons`, `projects`)", m.LookupConfig),
    ("`webhooks`", m.WebhookConfig),
    ("`flows[]`: one flow per IFS entity set", m.FlowConfig),
    ("`flows[].lines`", m.LinesConfig),
    ("`flows[].mapping`", m.IssueMapping),
    (
        "Value maps: `flows[].mapping.project`, `flows[].mapping.priority`, map form of "
        "`flows[].mapping.custom_fields.<name>`",
        m.ValueMap,
    ),
    ("`flows[].mapping.assignee`", m.AssigneeMapping),
    ("`flows[].writeback`", m.WritebackMapping),
    ("`flows[].writeback.statuses.<status>` and `flows[].writeback.categories.<category>`", m.StatusWrite),
]

# Meanings for fields whose model has no description. Keyed by (model, field).
NOTES: dict[tuple[type[BaseModel], str], str] = {
    (m.ConnectorConfig, "ifs"): "The IFS Cloud tenant (section below).",
    (m.ConnectorConfig, "jira"): "The Jira Cloud site (section below).",
    (m.ConnectorConfig, "store"): "Where state lives (section below).",
    (m.ConnectorConfig, "web"): "The web app served by `ml-connector run` (section below).",
    (m.ConnectorConfig, "runner"): "Scheduler settings (section below).",
    (m.ConnectorConfig, "sync"): "Retry and failed-queue policy (section below).",
    (m.ConnectorConfig, "lookups"): "IFS sets read once per TTL and joined into templates (section below).",
    (m.ConnectorConfig, "webhooks"): "Jira webhook upkeep (section below).",
    (m.ConnectorConfig, "flows"): "At least one flow; names must be unique.",
    (m.ConnectorConfig, "log_level"): "Log level of the process; the environment variable `ML_CONNECTOR_LOG_LEVEL` "
    "wins over it.",
    (c.IfsConnection, "url"): "Tenant base URL, e.g. `https://<tenant>.ifs.cloud`.",
    (c.IfsConnection, "realm"): "IAM realm (namespace); the token URL is "
    "`<url>/auth/realms/<realm>/protocol/openid-connect/token`.",
    (c.IfsConnection, "client_id"): "IAM client with a service account (client-credentials grant).",
    (c.IfsConnection, "client_secret"): "Secret of that IAM client.",
    (c.IfsConnection, "scope"): "Scope sent with the token request (omitted when empty).",
    (c.IfsConnection, "page_size"): "Rows per page (`Prefer: odata.maxpagesize`) unless the flow sets its own; "
    "must be below 5000.",
    (c.IfsConnection, "server_time_zone"): "IANA zone the IFS server (site) keeps wall time in, e.g. "
    "`America/Chicago`; reads and filters cursor attributes that are not time-zone aware (see Detecting changes). "
    "`check` compares it with what IFS shows.",
    (c.IfsConnection, "http"): "Timeouts, retries and pacing for IFS (section below).",
    (c.HttpSettings, "connect_timeout"): "Seconds to open a connection.",
    (c.HttpSettings, "read_timeout"): "Seconds to wait for a response.",
    (c.HttpSettings, "max_attempts"): "Tries per request, the first included, for transient errors (5xx, "
    "`MI_MODIFIED_ERROR`, timeouts, dropped connections, malformed answers such as an HTML page or cut JSON). A 429 "
    "uses no attempt: it is waited out within `sync.rate_limit_wait_max`.",
    (c.HttpSettings, "max_retry_seconds"): "Upper bound on the time one request may spend retrying, not counting "
    "429 waits during a run; outside a run (`check`) it also bounds one request's 429 waits.",
    (c.HttpSettings, "backoff_initial"): "Backoff before the first retry (seconds); doubles per retry, full jitter, "
    "never shorter than the server's `Retry-After`.",
    (c.HttpSettings, "backoff_max"): "Largest backoff between two tries (seconds), before `Retry-After`.",
    (c.HttpSettings, "burst"): "Token-bucket size for `requests_per_minute`.",
    (c.HttpSettings, "verify_tls"): "Verify TLS certificates.",
    (c.JiraConnection, "url"): "Site URL, e.g. `https://<site>.atlassian.net` (with OAuth it also selects the "
    "cloud id among the sites the grant can reach).",
    (c.JiraConnection, "auth"): "`kind: basic` or `kind: oauth` (sections below).",
    (c.JiraConnection, "http"): "Timeouts, retries and pacing for Jira (same keys as `ifs.http`).",
    (c.JiraBasicAuth, "kind"): "Selects Basic auth.",
    (c.JiraBasicAuth, "email"): "Atlassian account email of the integration user.",
    (c.JiraBasicAuth, "api_token"): "API token of that account.",
    (c.JiraOAuth, "kind"): "Selects OAuth 2.0 (3LO).",
    (c.JiraOAuth, "client_id"): "OAuth app client id.",
    (c.JiraOAuth, "client_secret"): "OAuth app client secret (also verifies the JWT on dynamic-webhook deliveries).",
    (c.JiraOAuth, "auth_url"): "Authorization server (token endpoint `<auth_url>/oauth/token`).",
    (c.JiraOAuth, "api_url"): "API gateway; requests go to `<api_url>/ex/jira/<cloud id>/rest/api/3/...`.",
    (c.JiraOAuth, "cloud_id"): "Skip discovery through `accessible-resources` by naming the cloud id.",
    (m.WebConfig, "host"): "Bind address of the web app (`run --host` overrides).",
    (m.WebConfig, "port"): "Port of the web app (`run --port` overrides).",
    (m.WebConfig, "admin_token"): "Dashboard token. Unset: the dashboard answers only loopback clients.",
    (m.RunnerConfig, "lease_ttl"): "Lifetime of the scheduler lease; renewed every third of it. A second daemon "
    "can take over this long after the holder died.",
    (m.SyncPolicy, "max_attempts"): "Failures a record may have before it is parked in the failed queue (outbound "
    "and write-back failures alike; a successful Jira write or IFS write-back resets the count).",
    (m.SyncPolicy, "retry_initial"): "Delay before the first record-level retry; doubles per attempt "
    "(a random point in the upper half of the window).",
    (m.SyncPolicy, "retry_max"): "Largest delay between record-level retries.",
    (m.SyncPolicy, "deleted_issue"): "A linked issue that Jira answers 404 for: `recreate` it, or `ignore` "
    "(the record becomes `orphaned`).",
    (m.SyncPolicy, "bulk_size"): "Issues per Jira bulk-create call (Jira's limit is 50).",
    (m.LookupsConfig, "suppliers"): "Joined on the flow's `supplier_field`; templates read it as `supplier.<Field>`. "
    "`null` turns it off.",
    (m.LookupsConfig, "persons"): "Joined on the assignee's person id; its `Email` field gives the assignee. "
    "`null` turns it off.",
    (m.LookupsConfig, "projects"): "Joined on the record's `ProjectId`; templates read it as `project.<Field>`.",
    (m.LookupConfig, "entity_set"): "`Projection.svc/EntitySet` to read (all rows matching `filter`).",
    (m.LookupConfig, "key"): "Field the rows are indexed by.",
    (m.LookupConfig, "select"): "Fields to read (empty: all). Include what the templates use, and `Email` for "
    "`persons`.",
    (m.LookupConfig, "filter"): "OData `$filter` for the lookup read.",
    (m.LookupConfig, "ttl"): "How long the lookup is cached in the process.",
    (m.WebhookConfig, "enabled"): "Use Jira webhooks besides polling. OAuth: the daemon registers and refreshes a "
    "dynamic webhook (needs `web.public_url`). Basic: register an admin webhook yourself; needs "
    "`jira.webhook_secret`.",
    (m.FlowConfig, "name"): "Flow name: lower case, digits and `_`, starting with a letter. Part of the identity "
    "label of every issue, so do not rename a flow that has created issues.",
    (m.FlowConfig, "preset"): "Fill in `entity_set`, `key`, `key_type`, `cursor_field` and more (see Presets).",
    (m.FlowConfig, "entity_set"): "`Projection.svc/EntitySet` to read. Required unless a preset sets it.",
    (m.FlowConfig, "key"): "IFS key field (deduplication key). Required unless a preset sets it.",
    (m.FlowConfig, "key_type"): "Type of the key in OData literals (`int` for `WoNo`).",
    (m.FlowConfig, "select"): "Fields to read (`$select`); the key and `cursor_field` are added. Empty: all fields.",
    (m.FlowConfig, "filter"): "Base OData `$filter`, sent verbatim. Enums need qualified literals, e.g. "
    "`Objstate ne IfsApp.PurchaseOrderHandling.PurchaseOrderState'Cancelled'`.",
    (m.FlowConfig, "detection"): "`cursor`: read what changed since the cursor. `snapshot`: read every matching "
    "record each run and skip the unchanged ones.",
    (m.FlowConfig, "cursor_field"): "Change (or creation) timestamp field; required for `detection: cursor`.",
    (m.FlowConfig, "cursor_time_zone_aware"): "`false` when `cursor_field` is not time-zone aware (often a `Cf_*` "
    "custom attribute): its values are then read and filtered as wall time in `ifs.server_time_zone`.",
    (m.FlowConfig, "lookback"): "Overlap subtracted from the cursor on each read.",
    (m.FlowConfig, "page_size"): "Rows per page for this flow (default `ifs.page_size`).",
    (m.FlowConfig, "schedule"): "`hourly`, `daily` (02:00 UTC), `every <duration>` or a 5-field cron expression in "
    "UTC; `null`: no scheduled runs.",
    (m.FlowConfig, "enabled"): "Disabled flows are not run by `sync`, `run` or `check` (`sync --flow` still runs one).",
    (m.FlowConfig, "lines"): "A child set read once per page (section below).",
    (m.FlowConfig, "mapping"): "How a record becomes an issue (section below).",
    (m.FlowConfig, "writeback"): "How the Jira status goes back to IFS (section below).",
    (m.LinesConfig, "entity_set"): "`Projection.svc/EntitySet` of the child rows.",
    (m.LinesConfig, "parent_key"): "Field in the child rows holding the parent's value of the same name.",
    (m.LinesConfig, "select"): "Fields to read (empty: all).",
    (m.LinesConfig, "orderby"): "Order of the lines; `line` in templates is the first one.",
    (m.IssueMapping, "project"): "Value map giving the Jira project key (must exist in Jira).",
    (m.IssueMapping, "issue_type"): "Jira issue type name.",
    (m.IssueMapping, "summary"): "Template; whitespace is collapsed; empty or longer than 255 characters parks the "
    "record.",
    (m.IssueMapping, "description"): "Template; plain text turned into ADF (blank line: new paragraph, `- ` lines: "
    "bullet list).",
    (m.IssueMapping, "priority"): "Value map giving a Jira priority name (must exist in Jira).",
    (m.IssueMapping, "assignee"): "How the assignee is found (section below).",
    (m.ValueMap, "map"): "Source value (as text) → Jira value.",
    (m.ValueMap, "default"): "Used when the source value is not in `map`. With neither a match nor a default the "
    "record is parked with a mapping error, except that an empty `map` passes the source value through.",
    (m.AssigneeMapping, "fallback_email"): "Also used when the resolved email has no Jira account (audited as a "
    "warning).",
    (m.WritebackMapping, "enabled"): "Write Jira status back for this flow.",
    (m.WritebackMapping, "status_field"): "IFS field receiving the status (`null`: none).",
    (m.WritebackMapping, "key_field"): "IFS field receiving the Jira issue key (`null`: none).",
    (m.WritebackMapping, "lookback"): "Overlap subtracted from the write-back cursor in the JQL bound.",
}

# Durations accept these units; defaults are shown in the largest unit that divides them.
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _is_duration(field: FieldInfo) -> bool:
    return any(getattr(meta, "func", None) is m._duration for meta in field.metadata)


def _duration_text(seconds: float) -> str:
    for unit, size in _UNITS:
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = list(dict.fromkeys(_type_name(a) for a in args if a is not type(None)))
        text = " or ".join(names)
        return f"{text} or null" if type(None) in args else text
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}s"
    if origin is dict:
        return f"map of {_type_name(args[0])} → {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        SecretStr: "secret",
        AnyHttpUrl: "URL",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, fmt in (
            ("ge", "≥ {}"),
            ("gt", "> {}"),
            ("le", "≤ {}"),
            ("lt", "< {}"),
            ("min_length", "min length {}"),
            ("max_length", "max length {}"),
            ("pattern", "`{}`"),
        ):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(fmt.format(value))
    return ", ".join(parts)


def _default(field: FieldInfo, duration: bool) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "**required**"
    if value is None:
        return "`null`"
    if isinstance(value, BaseModel):
        shown = value.model_dump(exclude_defaults=True)
        if not shown:
            return "see below"
        return "`{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in shown.items()) + "}`"
    if isinstance(value, SecretStr):
        return "(set)"
    if duration and isinstance(value, int | float):
        return f"`{_duration_text(float(value))}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{_scalar(value)}`"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _meaning(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    note = NOTES.get((model, name))
    if field.description and note:
        return f"{field.description} {note}"
    if field.description:
        return field.description
    if note:
        return note
    raise SystemExit(f"{model.__name__}.{name} has no description in the model and no note in {__file__}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(model: type[BaseModel]) -> str:
    rows = ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        duration = _is_duration(field)
        kind = "duration" if duration else _type_name(field.annotation)
        limits = _constraints(field)
        if limits:
            kind = f"{kind} ({limits})"
        meaning = _meaning(model, name, field)
        rows.append(f"| `{name}` | {_cell(kind)} | {_cell(_default(field, duration))} | {_cell(meaning)} |")
    return "\n".join(rows)


def _reachable(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            item = stack.pop()
            if isinstance(item, type) and issubclass(item, BaseModel):
                _reachable(item, seen)
            stack.extend(typing.get_args(item))


def render() -> str:
    reachable: set[type[BaseModel]] = set()
    _reachable(m.ConnectorConfig, reachable)
    covered = {model for _, model in SECTIONS}
    missing = sorted(x.__name__ for x in reachable - covered)
    if missing:
        raise SystemExit(f"configuration models without a table: {', '.join(missing)}")
    for model, name in NOTES:
        if name not in model.model_fields:
            raise SystemExit(f"note for {model.__name__}.{name}, which is not a field any more")
    parts = [BEGIN, ""]
    for heading, model in SECTIONS:
        parts += [f"### {heading}", "", table(model), ""]
    parts.append(END)
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        print(f"{DOC} has no generated block ({BEGIN} ... {END})", file=sys.stderr)
        return 2
    updated = text[:start] + render() + text[end + len(END) :]
    if "--check" in argv:
        if updated != text:
            print(f"{DOC} is out of date; run: .venv/bin/python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
