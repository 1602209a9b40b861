"""The simulator's state and behaviour, independent of HTTP: the ASGI layer (``app.py``) only translates.

All state sits behind one lock: uvicorn serves requests in its thread while tests call ``app.state.sim`` from theirs.
Search reads an index of frozen issue copies, fed through a delay queue when index lag is on, so "recent updates
might not be immediately visible" exactly as on Jira Cloud.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import random
import re
import secrets
import threading
import time
import warnings
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jwt

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.adf import validate_adf
from ml_connector.sim.jira.delivery import Delivery, DeliveryWorker
from ml_connector.sim.jira.jql import (
    Compiled,
    Index,
    JqlEnv,
    JqlError,
    UserRef,
    compile_query,
    sort_issues,
    webhook_filter_error,
)
from ml_connector.sim.jira.model import Issue
from ml_connector.sim.jira.options import Faults, JiraSimOptions

KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$")
MAX_BULK = 50


class ApiError(Exception):
    """A Jira error response: status plus ``{"errorMessages", "errors"}`` (or any body for OAuth errors)."""

    def __init__(
        self,
        status: int,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, messages, errors)
        self.status = status
        self.body = body if body is not None else {"errorMessages": messages or [], "errors": errors or {}}
        self.headers = headers or {}


@dataclass
class Principal:
    """Who is calling: the account, and for OAuth the client (app) it acts through."""

    account_id: str
    auth: str  # "basic" | "bearer"
    client_id: str | None = None


@dataclass
class Cursor:
    ids: list[int]
    reconciled: set[int]
    pos: int
    expires: datetime
    jql: str


@dataclass
class DynamicWebhook:
    id: int
    url: str
    events: list[str]
    jql: str
    compiled: Compiled
    field_ids: list[str] | None
    expires: datetime
    client_id: str
    account_id: str


@dataclass
class AdminWebhook:
    id: int
    name: str
    url: str
    events: list[str]
    jql: str
    compiled: Compiled | None
    secret: str | None
    exclude_body: bool
    enabled: bool = True


@dataclass
class Bucket:
    capacity: float
    tokens: float
    stamp: float


@dataclass
class OAuthState:
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> {"used": bool, ...}


def render_dt(dt: datetime, tz: ZoneInfo) -> str:
    """Jira's rendering: local to the account's zone, milliseconds, offset without colon."""
    local = dt.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


class JiraSim:
    """One simulated Jira Cloud site. Public methods are the control operations (and what the HTTP layer calls)."""

    def __init__(self, options: JiraSimOptions | None = None) -> None:
        self.lock = threading.RLock()
        self.worker: DeliveryWorker | None = None
        self.reset(options or JiraSimOptions())

    # ------------------------------------------------------------------------------------------------ lifecycle
    def reset(self, options: JiraSimOptions | None = None) -> None:
        with self.lock:
            if options is not None:
                self.options = options
            opts = self.options
            self.faults: Faults = opts.faults.model_copy(deep=True)
            self.tz = ZoneInfo(opts.time_zone)
            self.rng = random.Random(self.faults.seed)
            self.clock_offset = 0.0
            self.users = seed.build_users(opts.email, opts.time_zone)
            self.users_by_id = {u.account_id: u for u in self.users}
            self.me = self.users[0]
            self.issues: dict[int, Issue] = {}
            self.key_map: dict[str, int] = {}  # current and old keys -> id
            self.counters = {p: 0 for p in seed.PROJECTS}
            self.next_id = 10000
            self.index = Index()
            self.pending: list[tuple[datetime, int, int, Issue | None]] = []
            self.pending_seq = itertools.count()
            self.cursors: OrderedDict[str, Cursor] = OrderedDict()
            self.requests: deque[dict[str, Any]] = deque(maxlen=100_000)
            self.counts: dict[str, int] = {}
            self.request_seq = 0
            self.buckets: dict[str, Bucket] = {}
            self.oauth = OAuthState()
            self.dynamic_webhooks: dict[int, DynamicWebhook] = {}
            self.admin_webhooks: dict[int, AdminWebhook] = {}
            self.webhook_seq = itertools.count(10000)
            self.admin_seq = itertools.count(1)
            self.deliveries: list[dict[str, Any]] = []
            self.changelog_seq = itertools.count(100000)
            self.base_url = "http://127.0.0.1"
            if self.worker is not None:
                self.worker.stop()
            self.worker = DeliveryWorker(
                retry_delays=opts.webhook_retry_delays,
                timeout=opts.webhook_timeout_seconds,
                record=self._record_delivery,
            )
            if opts.admin_webhook_url:
                self.register_admin_webhook(
                    {
                        "name": "ml-connector",
                        "url": opts.admin_webhook_url,
                        "events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"],
                        "secret": opts.webhook_secret,
                    }
                )

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def set_clock(self, offset_seconds: float) -> None:
        with self.lock:
            self.clock_offset = float(offset_seconds)

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    def set_faults(self, changes: dict[str, Any]) -> Faults:
        with self.lock:
            merged = self.faults.model_dump() | changes
            self.faults = Faults.model_validate(merged)
            if "seed" in changes:
                self.rng = random.Random(self.faults.seed)
            if "burst_per_second" in changes or "per_issue_writes_per_second" in changes:
                self.buckets.clear()
            return self.faults

    # ------------------------------------------------------------------------------------------------ users
    def user_json(self, account_id: str | None, *, full: bool = False) -> dict[str, Any] | None:
        if account_id is None:
            return None
        user = self.users_by_id.get(account_id)
        if user is None:
            return None
        out: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/3/user?accountId={user.account_id}",
            "accountId": user.account_id,
            "accountType": user.account_type,
            "avatarUrls": _avatars(f"{self.base_url}/avatar/{user.account_id[-6:]}"),
            "displayName": user.display_name,
            "active": True,
            "timeZone": user.time_zone,
        }
        if not user.email_hidden:
            out["emailAddress"] = user.email
        if full:
            out["locale"] = "en_US"
        return out

    def find_users(self, query: str | None, account_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            if query and account_id:
                raise ApiError(400, ["The query parameter and accountId cannot be used together."])
            result = []
            q = (query or "").strip().lower()
            for user in self.users:
                if account_id is not None:
                    hit = user.account_id == account_id
                elif not q:
                    hit = False
                else:
                    names = [user.display_name.lower(), *user.display_name.lower().split()]
                    hit = any(n.startswith(q) for n in names)
                    if user.email_hidden:
                        hit = hit or user.email.lower() == q  # hidden emails match only exactly
                    else:
                        hit = hit or user.email.lower().startswith(q)
                if hit:
                    result.append(self.user_json(user.account_id))
            return [r for r in result if r is not None]

    def jql_env(self, account_id: str) -> JqlEnv:
        return JqlEnv(
            users=[UserRef(u.account_id, u.display_name, u.email, u.email_hidden) for u in self.users],
            current_account=account_id,
            tz=self.tz,
            now=self.now(),
            key_to_id=lambda k: self.key_map.get(k),
        )

    # ------------------------------------------------------------------------------------------------ rendering
    def project_json(self, project: seed.Project, *, expand: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/3/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "avatarUrls": _avatars(f"{self.base_url}/avatar/project/{project.id}"),
            "projectTypeKey": "business",
            "simplified": False,
            "style": "classic",
            "isPrivate": False,
        }
        if expand:
            out["issueTypes"] = [self.issuetype_json(seed.ISSUE_TYPES[t]) for t in project.issue_types]
        return out

    def issuetype_json(self, it: seed.IssueType) -> dict[str, Any]:
        return {
            "self": f"{self.base_url}/rest/api/3/issuetype/{it.id}",
            "id": it.id,
            "name": it.name,
            "description": it.description,
            "iconUrl": f"{self.base_url}/images/icons/issuetypes/{it.id}.svg",
            "subtask": False,
            "hierarchyLevel": 0,
        }

    def status_json(self, status_id: str) -> dict[str, Any]:
        status = seed.STATUSES[status_id]
        cat = seed.CATEGORIES[status.category]
        return {
            "self": f"{self.base_url}/rest/api/3/status/{status.id}",
            "description": "",
            "iconUrl": f"{self.base_url}/images/icons/statuses/generic.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": {
                "self": f"{self.base_url}/rest/api/3/statuscategory/{cat.id}",
                "id": cat.id,
                "key": cat.key,
                "colorName": cat.color,
                "name": cat.name,
            },
        }

    def priority_json(self, pid: str) -> dict[str, Any]:
        _, name, color = next(p for p in seed.PRIORITIES if p[0] == pid)
        return {
            "self": f"{self.base_url}/rest/api/3/priority/{pid}",
            "iconUrl": f"{self.base_url}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": pid,
            "statusColor": color,
            "description": f"{name} priority.",
        }

    def resolution_json(self, rid: str | None) -> dict[str, Any] | None:
        if rid is None:
            return None
        return {
            "self": f"{self.base_url}/rest/api/3/resolution/{rid}",
            "id": rid,
            "name": seed.RESOLUTIONS[rid],
            "description": "",
        }

    def custom_json(self, fid: str, value: Any) -> Any:
        cf = seed.CUSTOM_FIELDS[fid]
        if value is None:
            return None
        if cf.kind == "select":
            label = dict(cf.options)[value]
            return {"self": f"{self.base_url}/rest/api/3/customFieldOption/{value}", "value": label, "id": value}
        return value

    def field_values(self, issue: Issue) -> dict[str, Any]:
        project = seed.PROJECTS[issue.project]
        values: dict[str, Any] = {
            "summary": issue.summary,
            "description": issue.description,
            "issuetype": self.issuetype_json(seed.ISSUE_TYPES[issue.issuetype]),
            "project": self.project_json(project),
            "status": self.status_json(issue.status),
            "statusCategory": self.status_json(issue.status)["statusCategory"],
            "priority": self.priority_json(issue.priority) if issue.priority else None,
            "assignee": self.user_json(issue.assignee),
            "reporter": self.user_json(issue.reporter),
            "creator": self.user_json(issue.reporter),
            "labels": list(issue.labels),
            "duedate": issue.duedate,
            "resolution": self.resolution_json(issue.resolution),
            "resolutiondate": render_dt(issue.resolutiondate, self.tz) if issue.resolutiondate else None,
            "created": render_dt(issue.created, self.tz),
            "updated": render_dt(issue.updated, self.tz),
            "statuscategorychangedate": render_dt(issue.status_changed, self.tz),
        }
        for fid in project.custom_fields:
            values[fid] = self.custom_json(fid, issue.custom.get(fid))
        return values

    def issue_json(
        self,
        issue: Issue,
        *,
        fields: list[str] | None = None,
        expand: str = "",
        properties: list[str] | None = None,
        for_search: bool = False,
    ) -> dict[str, Any]:
        """Render an issue. ``fields`` None = every field (``*all``); search defaults to ``id`` only."""
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": str(issue.id),
            "self": f"{self.base_url}/rest/api/3/issue/{issue.id}",
            "key": issue.key,
        }
        if for_search and fields == ["id"]:
            return {"id": str(issue.id)}
        values = self.field_values(issue)
        selected = _select_fields(values, fields)
        out["fields"] = selected
        expands = {e.strip() for e in expand.split(",") if e.strip()}
        if "names" in expands:
            out["names"] = {k: self.field_name(k) for k in selected}
        if "schema" in expands:
            out["schema"] = {k: self.field_schema(k) for k in selected if self.field_schema(k)}
        if "transitions" in expands:
            out["transitions"] = self.transitions_json(issue, with_fields=False)
        if "changelog" in expands:
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(issue.history),
                "total": len(issue.history),
                "histories": list(issue.history),
            }
        if "renderedFields" in expands:
            out["renderedFields"] = {k: None for k in selected}
        if properties:
            wanted = (
                issue.properties
                if "*all" in properties
                else {k: issue.properties[k] for k in properties if k in issue.properties}
            )
            out["properties"] = dict(wanted)
        return out

    # ------------------------------------------------------------------------------------------------ fields
    def field_name(self, fid: str) -> str:
        if fid in seed.CUSTOM_FIELDS:
            return seed.CUSTOM_FIELDS[fid].name
        return _SYSTEM_FIELD_NAMES.get(fid, fid)

    def field_schema(self, fid: str) -> dict[str, Any] | None:
        if fid in seed.CUSTOM_FIELDS:
            cf = seed.CUSTOM_FIELDS[fid]
            kind = {"select": "option", "textfield": "string", "textarea": "string"}[cf.kind]
            return {
                "type": kind,
                "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{cf.kind}",
                "customId": cf.number,
            }
        schema = _SYSTEM_SCHEMAS.get(fid)
        if schema is None:
            return None
        out = {"type": schema[0], "system": fid}
        if schema[1]:
            out["items"] = schema[1]
        return out

    def fields_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for fid, name in _SYSTEM_FIELD_NAMES.items():
            entry: dict[str, Any] = {
                "id": fid,
                "key": fid,
                "name": name,
                "custom": False,
                "orderable": fid in seed.SCREEN_SYSTEM_FIELDS,
                "navigable": True,
                "searchable": True,
                "clauseNames": _SYSTEM_CLAUSES.get(fid, [fid]),
            }
            schema = self.field_schema(fid)
            if schema:
                entry["schema"] = schema
            out.append(entry)
        for cf in seed.CUSTOM_FIELDS.values():
            out.append(
                {
                    "id": cf.id,
                    "key": cf.id,
                    "name": cf.name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{cf.number}]", cf.name, f"{cf.name}[{_clause_suffix(cf.kind)}]"],
                    "schema": self.field_schema(cf.id),
                }
            )
        return out

    def allowed_values(self, fid: str, project: seed.Project) -> list[Any] | None:
        if fid == "priority":
            return [self.priority_json(p[0]) for p in seed.PRIORITIES]
        if fid == "issuetype":
            return [self.issuetype_json(seed.ISSUE_TYPES[t]) for t in project.issue_types]
        if fid == "project":
            return [self.project_json(project)]
        if fid in seed.CUSTOM_FIELDS and seed.CUSTOM_FIELDS[fid].kind == "select":
            return [
                {"self": f"{self.base_url}/rest/api/3/customFieldOption/{oid}", "value": val, "id": oid}
                for oid, val in seed.CUSTOM_FIELDS[fid].options
            ]
        return None

    def screen_fields(self, project: seed.Project, issuetype: str) -> list[str]:
        return [*seed.SCREEN_SYSTEM_FIELDS, *project.custom_fields]

    def required_fields(self, project: seed.Project, issuetype: str) -> set[str]:
        return {"summary", "issuetype", "project", "reporter", *project.required.get(issuetype, ())}

    def createmeta_fields(self, project_key: str, issuetype_id: str) -> list[dict[str, Any]]:
        project = self.project(project_key)
        if issuetype_id not in project.issue_types:
            raise ApiError(404, ["Issue type with id '" + issuetype_id + "' does not exist or is not visible."])
        required = self.required_fields(project, issuetype_id)
        out = []
        for fid in self.screen_fields(project, issuetype_id):
            entry: dict[str, Any] = {
                "required": fid in required,
                "schema": self.field_schema(fid) or {"type": "string", "system": fid},
                "name": self.field_name(fid),
                "key": fid,
                "fieldId": fid,
                "hasDefaultValue": fid in ("priority", "reporter"),
                "operations": ["set", "add", "remove"] if fid == "labels" else ["set"],
            }
            allowed = self.allowed_values(fid, project)
            if allowed is not None:
                entry["allowedValues"] = allowed
            if fid == "priority":
                entry["defaultValue"] = self.priority_json(seed.DEFAULT_PRIORITY)
            if fid in ("assignee", "reporter"):
                entry["autoCompleteUrl"] = f"{self.base_url}/rest/api/3/user/search?query="
            out.append(entry)
        return out

    def project(self, key_or_id: str) -> seed.Project:
        for p in seed.PROJECTS.values():
            if key_or_id in (p.key, p.id) or key_or_id.upper() == p.key:
                return p
        raise ApiError(404, [f"No project could be found with key '{key_or_id}'."])

    # ------------------------------------------------------------------------------------------------ issues
    def get_issue(self, id_or_key: str) -> Issue:
        """Resolve an id or a key (current or pre-move, case-insensitive) to the live issue, or 404."""
        with self.lock:
            issue_id: int | None
            if id_or_key.isdigit():
                issue_id = int(id_or_key)
            else:
                issue_id = self.key_map.get(id_or_key.upper())
            issue = self.issues.get(issue_id) if issue_id is not None else None
            if issue is None:
                raise ApiError(404, ["Issue does not exist or you do not have permission to see it."])
            return issue

    def _new_issue(self, project: seed.Project, issuetype: str, when: datetime | None = None) -> Issue:
        now = when or self.now()
        self.counters[project.key] += 1
        self.next_id += 1
        key = f"{project.key}-{self.counters[project.key]}"
        return Issue(
            id=self.next_id,
            key=key,
            project=project.key,
            issuetype=issuetype,
            status=project.workflow.initial,
            created=now,
            updated=now,
            status_changed=now,
            priority=seed.DEFAULT_PRIORITY,
        )

    def _resolve_project(self, value: Any) -> seed.Project | None:
        if not isinstance(value, dict):
            return None
        ref = value.get("key") or value.get("id")
        if not isinstance(ref, str | int):
            return None
        for p in seed.PROJECTS.values():
            if str(ref) in (p.key, p.id):
                return p
        return None

    def _resolve_issuetype(self, value: Any, project: seed.Project) -> str | None:
        if not isinstance(value, dict):
            return None
        ref = value.get("id") or value.get("name")
        for tid in project.issue_types:
            if str(ref) in (tid, seed.ISSUE_TYPES[tid].name):
                return tid
        return None

    def _apply_fields(
        self,
        issue: Issue,
        project: seed.Project,
        fields: dict[str, Any],
        update: dict[str, Any],
        *,
        creating: bool,
    ) -> tuple[dict[str, str], list[tuple[str, Any]]]:
        """Validate ``fields``/``update`` against the screen; return (errors, [(field id, new raw value)])."""
        errors: dict[str, str] = {}
        changes: list[tuple[str, Any]] = []
        screen = set(self.screen_fields(project, issue.issuetype))
        ignored = {"project", "issuetype"} if creating else {"status", "project", "issuetype"}
        for fid in set(fields) & set(update):
            errors[fid] = f"Field '{fid}' cannot be set in both fields and update."
        # Normalise update operations into plain values.
        merged: dict[str, Any] = dict(fields)
        for fid, ops in update.items():
            if fid in errors:
                continue
            if not isinstance(ops, list):
                errors[fid] = "Operation value must be a list of operations."
                continue
            if fid == "labels":
                labels = list(issue.labels)
                for op in ops:
                    if not isinstance(op, dict) or len(op) != 1:
                        errors[fid] = "Invalid operation."
                        break
                    verb, arg = next(iter(op.items()))
                    if verb == "add" and isinstance(arg, str):
                        labels.append(arg) if arg not in labels else None
                    elif verb == "remove" and isinstance(arg, str):
                        labels = [lb for lb in labels if lb != arg]
                    elif verb == "set" and isinstance(arg, list):
                        labels = list(arg)
                    else:
                        errors[fid] = f"Operation '{verb}' is not supported for field '{fid}'."
                        break
                merged[fid] = labels
            else:
                for op in ops:
                    if isinstance(op, dict) and set(op) == {"set"}:
                        merged[fid] = op["set"]
                    else:
                        errors[fid] = f"Only the 'set' operation is supported for field '{fid}'."
        for fid, value in merged.items():
            if fid in errors or fid in ignored:
                continue
            if fid not in screen:
                errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            msg, raw = self._check_value(fid, value)
            if msg:
                errors[fid] = msg
            else:
                changes.append((fid, raw))
        required = self.required_fields(project, issue.issuetype) - {"project", "issuetype", "reporter"}
        after = {fid: raw for fid, raw in changes}
        for fid in required:
            if fid in errors:
                continue
            present = after[fid] if fid in after else (None if creating else self._raw_value(issue, fid))
            if present in (None, "", []):
                errors[fid] = (
                    "You must specify a summary of the issue."
                    if fid == "summary"
                    else f"{self.field_name(fid)} is required."
                )
        return errors, changes

    def _check_value(self, fid: str, value: Any) -> tuple[str | None, Any]:
        if fid == "summary":
            if not isinstance(value, str):
                return "Operation value must be a string", None
            if len(value) > 255:
                return "Summary must be less than 255 characters.", None
            if "\n" in value or "\r" in value:
                return "The summary is invalid because it contains newline characters.", None
            return None, value.strip()
        if fid in ("description", "environment"):
            if value is None:
                return None, None
            return validate_adf(value), value
        if fid == "priority":
            if value is None:
                return None, None
            if not isinstance(value, dict):
                return "Specify the Priority (id or name) in the string format", None
            ref = value.get("id") or value.get("name")
            for pid, name, _ in seed.PRIORITIES:
                if ref in (pid, name):
                    return None, pid
            return "The priority selected is invalid.", None
        if fid in ("assignee", "reporter"):
            if value is None:
                return None, None
            ref = value.get("accountId") or value.get("id") if isinstance(value, dict) else None
            if isinstance(ref, str) and ref in self.users_by_id:
                return None, ref
            return "Specified user does not exist or you do not have required permissions", None
        if fid == "labels":
            if value is None:
                return None, []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return "Operation value must be an array of strings", None
            for label in value:
                if " " in label:
                    return f"The label '{label}' contains spaces which is invalid.", None
                if len(label) > 255:
                    return f"The label '{label}' exceeds the maximum length of 255 characters.", None
                if not label:
                    return "The label must not be empty.", None
            return None, list(dict.fromkeys(value))
        if fid == "duedate":
            if value is None:
                return None, None
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                return f"Error parsing date string: {value}", None
            return None, value
        cf = seed.CUSTOM_FIELDS.get(fid)
        if cf is None:
            return f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown.", None
        if value is None:
            return None, None
        if cf.kind == "select":
            if not isinstance(value, dict):
                return "Specify a valid 'id' or 'name' for " + cf.name, None
            if "id" in value:
                if str(value["id"]) in dict(cf.options):
                    return None, str(value["id"])
                return f"Option id '{value['id']}' is not valid", None
            for oid, label in cf.options:
                if value.get("value") == label:
                    return None, oid
            return f"Option value '{value.get('value')}' is not valid", None
        if cf.kind == "textarea":
            return validate_adf(value), value
        if not isinstance(value, str):
            return "Operation value must be a string", None
        if len(value) > 255:
            return "The entered text is too long. It exceeds the allowed limit of 255 characters.", None
        return None, value

    @staticmethod
    def _raw_value(issue: Issue, fid: str) -> Any:
        if fid in seed.CUSTOM_FIELDS:
            return issue.custom.get(fid)
        return getattr(issue, fid, None)

    def _set_raw(self, issue: Issue, fid: str, raw: Any) -> dict[str, Any] | None:
        """Set one field; return its changelog item (None when unchanged)."""
        old = self._raw_value(issue, fid)
        if old == raw:
            return None
        if fid in seed.CUSTOM_FIELDS:
            issue.custom[fid] = raw
        else:
            setattr(issue, fid, raw)
        return self._change_item(fid, old, raw)

    def _change_item(self, fid: str, old: Any, new: Any) -> dict[str, Any]:
        def text(fid: str, raw: Any) -> str | None:
            if raw is None:
                return None
            if fid == "labels":
                return " ".join(raw)
            if fid == "priority":
                return next(p[1] for p in seed.PRIORITIES if p[0] == raw)
            if fid in ("assignee", "reporter"):
                user = self.users_by_id.get(raw)
                return user.display_name if user else raw
            if fid == "status":
                return seed.STATUSES[raw].name
            if fid == "resolution":
                return seed.RESOLUTIONS[raw]
            if fid in seed.CUSTOM_FIELDS and seed.CUSTOM_FIELDS[fid].kind == "select":
                return dict(seed.CUSTOM_FIELDS[fid].options)[raw]
            if isinstance(raw, dict):
                return "(document)"
            return str(raw)

        ids = fid in ("priority", "assignee", "reporter", "status", "resolution", "issuetype", "project") or (
            fid in seed.CUSTOM_FIELDS and seed.CUSTOM_FIELDS[fid].kind == "select"
        )
        custom = fid in seed.CUSTOM_FIELDS
        return {
            "field": self.field_name(fid) if custom else fid,
            "fieldtype": "custom" if custom else "jira",
            "fieldId": fid,
            "from": (str(old) if old is not None else None) if ids else None,
            "fromString": text(fid, old),
            "to": (str(new) if new is not None else None) if ids else None,
            "toString": text(fid, new),
        }

    def _touch(self, issue: Issue, items: list[dict[str, Any]], actor: str, *, when: datetime | None = None) -> None:
        """Record a change: bump ``updated``, append history, feed the search index (now or after the lag)."""
        now = when or self.now()
        issue.updated = now
        if items:
            issue.history.append(
                {
                    "id": str(next(self.changelog_seq)),
                    "author": self.user_json(actor),
                    "created": render_dt(now, self.tz),
                    "items": items,
                }
            )
        self._reindex(issue.id, issue)

    def _reindex(self, issue_id: int, issue: Issue | None) -> None:
        snap = issue.snapshot() if issue is not None else None
        lag = self.faults.index_lag_seconds
        if lag <= 0 and not self.pending:
            self._apply_index(issue_id, snap)
            return
        heapq.heappush(self.pending, (self.now() + timedelta(seconds=lag), next(self.pending_seq), issue_id, snap))

    def _apply_index(self, issue_id: int, snap: Issue | None) -> None:
        if snap is None:
            self.index.remove(issue_id)
        else:
            self.index.add(snap)

    def _drain_index(self) -> None:
        now = self.now()
        while self.pending and self.pending[0][0] <= now:
            _, _, issue_id, snap = heapq.heappop(self.pending)
            self._apply_index(issue_id, snap)

    def flush_index(self) -> None:
        """Control: make every pending change searchable now."""
        with self.lock:
            while self.pending:
                _, _, issue_id, snap = heapq.heappop(self.pending)
                self._apply_index(issue_id, snap)

    def create_issue(self, payload: Any, actor: str, *, notify: bool = True) -> Issue:
        with self.lock:
            issue = self._create(payload, actor)
            if notify:
                self._emit("jira:issue_created", issue, None, actor)
            return issue

    def _create(self, payload: Any, actor: str, *, when: datetime | None = None) -> Issue:
        if not isinstance(payload, dict):
            raise ApiError(400, ["Can not deserialize instance of IssueUpdateDetails out of the request body."])
        fields = payload.get("fields") or {}
        update = payload.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise ApiError(400, ["Can not deserialize the request body: 'fields' and 'update' must be objects."])
        project = self._resolve_project(fields.get("project"))
        if project is None:
            raise ApiError(400, errors={"project": "Specify a valid project ID or key"})
        if "issuetype" not in fields:
            raise ApiError(400, errors={"issuetype": "Specify an issue type"})
        issuetype = self._resolve_issuetype(fields.get("issuetype"), project)
        if issuetype is None:
            raise ApiError(400, errors={"issuetype": "The issue type selected is invalid."})
        probe = Issue(0, "", project.key, issuetype, project.workflow.initial, self.now(), self.now(), self.now())
        errors, changes = self._apply_fields(probe, project, fields, update, creating=True)
        properties = payload.get("properties") or []
        if not isinstance(properties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p for p in properties
        ):
            errors["properties"] = "Properties must be a list of objects with 'key' and 'value'."
        transition = payload.get("transition")
        if errors:
            raise ApiError(400, errors=errors)
        issue = self._new_issue(project, issuetype, when)
        issue.reporter = actor
        for fid, raw in changes:
            self._set_raw(issue, fid, raw)
        for prop in properties:
            issue.properties[prop["key"]] = prop["value"]
        self.issues[issue.id] = issue
        self.key_map[issue.key] = issue.id
        if isinstance(transition, dict) and transition.get("id"):
            self._transition(issue, str(transition["id"]), {}, actor, emit=False)
        self._touch(issue, [], actor, when=when)
        return issue

    def created_json(self, issue: Issue) -> dict[str, Any]:
        return {"id": str(issue.id), "key": issue.key, "self": f"{self.base_url}/rest/api/3/issue/{issue.id}"}

    def bulk_create(self, payload: Any, actor: str) -> tuple[int, dict[str, Any]]:
        updates = payload.get("issueUpdates") if isinstance(payload, dict) else None
        if not isinstance(updates, list):
            raise ApiError(400, ["Request body must contain 'issueUpdates'."])
        if len(updates) > MAX_BULK:
            raise ApiError(400, [f"The number of issues to create exceeds the maximum of {MAX_BULK}."])
        created: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        with self.lock:
            for n, item in enumerate(updates):
                try:
                    issue = self._create(item, actor)
                except ApiError as exc:
                    failures.append({"status": exc.status, "elementErrors": exc.body, "failedElementNumber": n})
                    continue
                created.append(self.created_json(issue))
                self._emit("jira:issue_created", issue, None, actor)
        status = 201 if created or not updates else 400
        return status, {"issues": created, "errors": failures}

    def edit_issue(self, id_or_key: str, payload: Any, actor: str, *, check_rate: bool = True) -> Issue:
        with self.lock:
            issue = self.get_issue(id_or_key)
            if check_rate:
                self.check_issue_write(issue)
            if not isinstance(payload, dict):
                raise ApiError(400, ["Can not deserialize instance of IssueUpdateDetails out of the request body."])
            fields = payload.get("fields") or {}
            update = payload.get("update") or {}
            if not isinstance(fields, dict) or not isinstance(update, dict):
                raise ApiError(400, ["'fields' and 'update' must be objects."])
            project = seed.PROJECTS[issue.project]
            errors, changes = self._apply_fields(issue, project, fields, update, creating=False)
            properties = payload.get("properties") or []
            if errors:
                raise ApiError(400, errors=errors)
            items = [it for fid, raw in changes if (it := self._set_raw(issue, fid, raw)) is not None]
            for prop in properties if isinstance(properties, list) else []:
                if isinstance(prop, dict) and isinstance(prop.get("key"), str):
                    issue.properties[prop["key"]] = prop.get("value")
            if items or properties:
                self._touch(issue, items, actor)
                if items:
                    self._emit("jira:issue_updated", issue, items, actor)
            return issue

    def delete_issue(self, id_or_key: str, actor: str, *, check_rate: bool = True) -> None:
        with self.lock:
            issue = self.get_issue(id_or_key)
            if check_rate:
                self.check_issue_write(issue)
            del self.issues[issue.id]
            for key in [issue.key, *issue.old_keys]:
                self.key_map.pop(key, None)
            self._reindex(issue.id, None)
            self._emit("jira:issue_deleted", issue, None, actor)

    def move_issue(self, id_or_key: str, target: str, issuetype: str | None, actor: str) -> Issue:
        """A person moves the issue to another project: new key, old key keeps resolving, status mapped by category."""
        with self.lock:
            issue = self.get_issue(id_or_key)
            project = self.project(target)
            if project.key == issue.project:
                raise ApiError(400, ["The issue is already in this project."])
            new_type = issuetype or issue.issuetype
            if new_type not in project.issue_types:
                new_type = next(
                    (t for t in project.issue_types if seed.ISSUE_TYPES[t].name == new_type), project.issue_types[0]
                )
            old_key, old_project, old_status = issue.key, issue.project, issue.status
            self.counters[project.key] += 1
            issue.old_keys.append(old_key)
            issue.key = f"{project.key}-{self.counters[project.key]}"
            issue.project = project.key
            issue.issuetype = new_type
            category = seed.STATUSES[old_status].category
            if old_status not in project.workflow.statuses:
                issue.status = next(s for s in project.workflow.statuses if seed.STATUSES[s].category == category)
            self.key_map[issue.key] = issue.id
            items: list[dict[str, Any]] = [
                {
                    "field": "Key",
                    "fieldtype": "jira",
                    "fieldId": "key",
                    "from": None,
                    "fromString": old_key,
                    "to": None,
                    "toString": issue.key,
                },
                {
                    "field": "project",
                    "fieldtype": "jira",
                    "fieldId": "project",
                    "from": seed.PROJECTS[old_project].id,
                    "fromString": seed.PROJECTS[old_project].name,
                    "to": project.id,
                    "toString": project.name,
                },
            ]
            if issue.status != old_status:
                items.append(self._change_item("status", old_status, issue.status))
                issue.status_changed = self.now()
            self._touch(issue, items, actor)
            self._emit("jira:issue_updated", issue, items, actor)
            return issue

    # ------------------------------------------------------------------------------------------------ properties
    def set_property(self, id_or_key: str, key: str, value: Any) -> bool:
        with self.lock:
            issue = self.get_issue(id_or_key)
            self.check_issue_write(issue)
            if len(key) > 255:
                raise ApiError(400, ["The property key can not be longer than 255 characters."])
            if len(json.dumps(value)) > 32768:
                raise ApiError(400, ["The property value can not be longer than 32768 characters."])
            created = key not in issue.properties
            issue.properties[key] = value
            self._reindex(issue.id, issue)
            return created

    def delete_property(self, id_or_key: str, key: str) -> None:
        with self.lock:
            issue = self.get_issue(id_or_key)
            self.check_issue_write(issue)
            if key not in issue.properties:
                raise ApiError(404, [f"The property with key '{key}' does not exist."])
            del issue.properties[key]
            self._reindex(issue.id, issue)

    # ------------------------------------------------------------------------------------------------ transitions
    def available_transitions(self, issue: Issue) -> list[seed.Transition]:
        wf = seed.PROJECTS[issue.project].workflow
        return [t for t in wf.transitions if issue.status in t.sources]

    def transitions_json(self, issue: Issue, *, with_fields: bool) -> list[dict[str, Any]]:
        out = []
        for t in self.available_transitions(issue):
            entry: dict[str, Any] = {
                "id": t.id,
                "name": t.name,
                "to": self.status_json(t.to),
                "hasScreen": bool(t.screen_fields),
                "isGlobal": False,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            if with_fields:
                entry["fields"] = {
                    fid: {
                        "required": fid in t.required_fields,
                        "schema": {"type": "resolution", "system": "resolution"},
                        "name": "Resolution",
                        "key": fid,
                        "hasDefaultValue": False,
                        "operations": ["set"],
                        "allowedValues": [self.resolution_json(r) for r in seed.RESOLUTIONS],
                    }
                    for fid in t.screen_fields
                }
            out.append(entry)
        return out

    def do_transition(self, id_or_key: str, payload: Any, actor: str) -> None:
        with self.lock:
            issue = self.get_issue(id_or_key)
            self.check_issue_write(issue)
            transition = payload.get("transition") if isinstance(payload, dict) else None
            if not isinstance(transition, dict) or not (transition.get("id") or transition.get("name")):
                raise ApiError(400, ["Missing 'transition' identifier"])
            tid = str(transition.get("id") or "")
            if not tid:
                match = [t for t in self.available_transitions(issue) if t.name == transition.get("name")]
                tid = match[0].id if match else str(transition.get("name"))
            fields = payload.get("fields") or {}
            if not isinstance(fields, dict):
                raise ApiError(400, ["'fields' must be an object."])
            self._transition(issue, tid, fields, actor, emit=True)

    def _transition(self, issue: Issue, tid: str, fields: dict[str, Any], actor: str, *, emit: bool) -> None:
        t = next((t for t in self.available_transitions(issue) if t.id == tid), None)
        if t is None:
            raise ApiError(400, [f"Transition id '{tid}' is not valid for this issue."])
        errors: dict[str, str] = {}
        resolution: str | None = None
        for fid, value in fields.items():
            if fid not in t.screen_fields:
                errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            ref = value.get("id") or value.get("name") if isinstance(value, dict) else None
            resolution = next((rid for rid, name in seed.RESOLUTIONS.items() if ref in (rid, name)), None)
            if resolution is None:
                errors[fid] = "The resolution selected is invalid."
        for fid in t.required_fields:
            if fid not in fields and fid not in errors:
                errors[fid] = f"{fid.capitalize()} is required."
        if errors:
            raise ApiError(400, errors=errors)
        items = []
        old_status = issue.status
        issue.status = t.to
        issue.status_changed = self.now()
        items.append(self._change_item("status", old_status, t.to))
        new_resolution = issue.resolution
        if resolution is not None:
            new_resolution = resolution
        elif t.sets_resolution:
            new_resolution = t.sets_resolution
        elif t.clears_resolution:
            new_resolution = None
        if new_resolution != issue.resolution:
            items.append(self._change_item("resolution", issue.resolution, new_resolution))
            issue.resolution = new_resolution
            issue.resolutiondate = self.now() if new_resolution else None
        self._touch(issue, items, actor)
        if emit:
            self._emit("jira:issue_updated", issue, items, actor)

    def transition_to_status(self, id_or_key: str, status_name: str, actor: str) -> Issue:
        """Control: a person moves the issue to ``status_name`` through the workflow (one transition)."""
        with self.lock:
            issue = self.get_issue(id_or_key)
            for t in self.available_transitions(issue):
                if seed.STATUSES[t.to].name.lower() == status_name.lower():
                    fields = {"resolution": {"name": "Fixed"}} if t.required_fields else {}
                    self._transition(issue, t.id, fields, actor, emit=True)
                    return issue
            raise ApiError(400, [f"No transition from '{seed.STATUSES[issue.status].name}' to '{status_name}'."])

    # ------------------------------------------------------------------------------------------------ search
    def search(
        self,
        *,
        jql: str,
        next_page_token: str | None,
        max_results: int,
        fields: list[str] | None,
        expand: str,
        properties: list[str],
        reconcile: list[int],
        principal: Principal,
    ) -> dict[str, Any]:
        with self.lock:
            self._drain_index()
            now = self.now()
            if next_page_token:
                cursor = self.cursors.get(next_page_token)
                if cursor is None or cursor.expires < now or cursor.jql != jql:
                    raise ApiError(400, ["The provided next page token is invalid or expired."])
                del self.cursors[next_page_token]
            else:
                try:
                    compiled = compile_query(jql, self.jql_env(principal.account_id))
                except JqlError as exc:
                    raise ApiError(400, [str(exc)]) from exc
                if not compiled.bounded:
                    raise ApiError(
                        400,
                        ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."],
                    )
                if len(reconcile) > 50:
                    raise ApiError(400, ["The number of issues to reconcile must not exceed 50."])
                candidates = compiled.cand(self.index)
                pool = (
                    self.index.issues
                    if candidates is None
                    else {i: self.index.issues[i] for i in candidates if i in self.index.issues}
                )
                recon = {i for i in reconcile if i in self.issues}
                matched = [iss for iid, iss in pool.items() if iid not in recon and compiled.pred(iss)]
                matched += [self.issues[i] for i in recon if compiled.pred(self.issues[i])]
                ordered = sort_issues(matched, compiled.order)
                cursor = Cursor([i.id for i in ordered], recon, 0, now + timedelta(days=7), jql)
            limit_cap = 5000 if fields is not None and set(fields) <= {"id", "key"} else 100
            size = max(0, min(max_results, limit_cap))
            page_ids = cursor.ids[cursor.pos : cursor.pos + size]
            cursor.pos += len(page_ids)
            issues = []
            for iid in page_ids:
                source = self.issues.get(iid) if iid in cursor.reconciled else self.index.issues.get(iid)
                if source is None:
                    source = self.issues.get(iid)
                if source is None:
                    continue  # deleted since the first page
                issues.append(
                    self.issue_json(source, fields=fields, expand=expand, properties=properties, for_search=True)
                )
            out: dict[str, Any] = {"issues": issues}
            if cursor.pos < len(cursor.ids):
                token = secrets.token_urlsafe(24)
                self.cursors[token] = cursor
                while len(self.cursors) > 1000:
                    self.cursors.popitem(last=False)
                out["nextPageToken"] = token
                out["isLast"] = False
            else:
                out["isLast"] = True
            return out

    def approximate_count(self, jql: str, principal: Principal) -> int:
        with self.lock:
            self._drain_index()
            try:
                compiled = compile_query(jql, self.jql_env(principal.account_id))
            except JqlError as exc:
                raise ApiError(400, [str(exc)]) from exc
            if not compiled.bounded:
                raise ApiError(
                    400, ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."]
                )
            return sum(1 for iss in self.index.issues.values() if compiled.pred(iss))

    # ------------------------------------------------------------------------------------------------ rate limits
    def _take(self, key: str, rate: float) -> bool:
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(rate, rate, now)
        bucket.tokens = min(bucket.capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def rate_limited(self, reason: str, limit: float) -> ApiError:
        retry = self.faults.retry_after_seconds
        wait = 1.0 if retry is None else retry
        reset = (datetime.now(UTC) + timedelta(seconds=wait)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        headers = {
            "RateLimit-Reason": reason,
            "X-RateLimit-Limit": _num(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
        if retry is not None:
            headers["Retry-After"] = _num(retry)
        return ApiError(429, ["Rate limit exceeded."], headers=headers)

    def check_burst(self, endpoint: str) -> None:
        rate = self.faults.burst_per_second
        if rate is not None and not self._take("burst:" + endpoint, rate):
            raise self.rate_limited("jira-burst-based", rate)

    def check_issue_write(self, issue: Issue) -> None:
        rate = self.faults.per_issue_writes_per_second
        if rate is not None and not self._take(f"issue:{issue.id}", rate):
            raise self.rate_limited("jira-per-issue-on-write", rate)

    # ------------------------------------------------------------------------------------------------ request log
    def log_request(self, method: str, path: str, template: str, query: str, status: int, auth: str) -> None:
        with self.lock:
            self.request_seq += 1
            self.requests.append(
                {
                    "seq": self.request_seq,
                    "time": self.now().isoformat(timespec="milliseconds"),
                    "method": method,
                    "path": path,
                    "endpoint": template,
                    "query": query,
                    "status": status,
                    "auth": auth,
                }
            )
            name = f"{method} {template}"
            self.counts[name] = self.counts.get(name, 0) + 1

    def request_log(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": list(self.requests), "counts": dict(self.counts)}

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()
            self.counts.clear()

    # ------------------------------------------------------------------------------------------------ OAuth 3LO
    def oauth_authorize(self, params: dict[str, str]) -> str:
        """Consent as the connector's account; return the redirect URL carrying ``code`` and ``state``."""
        with self.lock:
            if params.get("client_id") != self.options.oauth_client_id:
                raise ApiError(400, body={"error": "invalid_client", "error_description": "Unknown client_id."})
            if params.get("response_type") != "code":
                raise ApiError(
                    400, body={"error": "unsupported_response_type", "error_description": "response_type must be code"}
                )
            redirect = params.get("redirect_uri")
            if not redirect:
                raise ApiError(400, body={"error": "invalid_request", "error_description": "redirect_uri is required"})
            code = secrets.token_urlsafe(24)
            self.oauth.codes[code] = {
                "redirect_uri": redirect,
                "scope": params.get("scope", ""),
                "expires": self.now() + timedelta(minutes=10),
            }
            sep = "&" if "?" in redirect else "?"
            from urllib.parse import urlencode

            return redirect + sep + urlencode({"code": code, "state": params.get("state", "")})

    def oauth_token(self, form: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if form.get("client_id") != self.options.oauth_client_id or not hmac.compare_digest(
                str(form.get("client_secret", "")), self.options.oauth_client_secret
            ):
                raise ApiError(401, body={"error": "access_denied", "error_description": "Unauthorized"})
            grant = form.get("grant_type")
            if grant == "authorization_code":
                code = self.oauth.codes.pop(str(form.get("code", "")), None)
                if code is None or code["expires"] < self.now():
                    raise ApiError(
                        403, body={"error": "invalid_grant", "error_description": "Invalid authorization code"}
                    )
                if form.get("redirect_uri") != code["redirect_uri"]:
                    raise ApiError(
                        403, body={"error": "invalid_grant", "error_description": "redirect_uri does not match"}
                    )
                scope = code["scope"]
            elif grant == "refresh_token":
                token = str(form.get("refresh_token", ""))
                entry = self.oauth.refresh.get(token)
                if entry is None or entry["used"]:
                    raise ApiError(
                        403, body={"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
                    )
                entry["used"] = True  # rotating refresh tokens: each one works exactly once
                scope = entry["scope"]
            else:
                raise ApiError(400, body={"error": "unsupported_grant_type", "error_description": str(grant)})
            access = secrets.token_urlsafe(32)
            lifetime = self.faults.access_token_lifetime_seconds
            self.oauth.access[access] = {"expires": self.now() + timedelta(seconds=lifetime), "scope": scope}
            out: dict[str, Any] = {
                "access_token": access,
                "expires_in": lifetime,
                "token_type": "Bearer",
                "scope": scope,
            }
            if "offline_access" in scope.split():
                refresh = secrets.token_urlsafe(32)
                self.oauth.refresh[refresh] = {"used": False, "scope": scope}
                out["refresh_token"] = refresh
            return out

    def bearer_principal(self, token: str) -> Principal | None:
        with self.lock:
            entry = self.oauth.access.get(token)
            if entry is None or entry["expires"] <= self.now():
                return None
            return Principal(self.me.account_id, "bearer", self.options.oauth_client_id)

    def basic_principal(self, email: str, token: str) -> Principal | None:
        if email.lower() == self.options.email.lower() and hmac.compare_digest(token, self.options.api_token):
            return Principal(self.me.account_id, "basic")
        return None

    def accessible_resources(self, site_url: str, token: str) -> list[dict[str, Any]]:
        with self.lock:
            entry = self.oauth.access.get(token)
            if entry is None or entry["expires"] <= self.now():
                raise ApiError(401, body={"code": 401, "message": "Unauthorized"})
            return [
                {
                    "id": self.options.cloud_id,
                    "url": site_url,
                    "name": self.options.site_name,
                    "scopes": entry["scope"].split(),
                    "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
                }
            ]

    # ------------------------------------------------------------------------------------------------ webhooks
    def register_webhooks(self, payload: Any, principal: Principal) -> dict[str, Any]:
        with self.lock:
            if principal.client_id is None:
                raise ApiError(403, ["Only Connect and OAuth 2.0 apps can use this operation."])
            if not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
                raise ApiError(400, ["'url' is required."])
            webhooks = payload.get("webhooks")
            if not isinstance(webhooks, list) or not webhooks:
                raise ApiError(400, ["'webhooks' must be a non-empty list."])
            url = payload["url"]
            mine = [w for w in self.dynamic_webhooks.values() if w.client_id == principal.client_id]
            if any(w.url != url for w in mine):
                raise ApiError(400, ["Only a single URL per app is allowed to be registered."])
            results: list[dict[str, Any]] = []
            count = len(mine)
            for spec in webhooks:
                errors = self._webhook_spec_errors(spec)
                if not errors and count >= self.options.max_webhooks_per_app:
                    errors = ["Maximum number of webhooks per app reached."]
                if errors:
                    results.append({"errors": errors})
                    continue
                wid = next(self.webhook_seq)
                self.dynamic_webhooks[wid] = DynamicWebhook(
                    id=wid,
                    url=url,
                    events=list(spec["events"]),
                    jql=spec["jqlFilter"],
                    compiled=compile_query(spec["jqlFilter"], self.jql_env(principal.account_id)),
                    field_ids=spec.get("fieldIdsFilter"),
                    expires=self.now() + timedelta(days=self.options.webhook_ttl_days),
                    client_id=principal.client_id,
                    account_id=principal.account_id,
                )
                count += 1
                results.append({"createdWebhookId": wid})
            return {"webhookRegistrationResult": results}

    def _webhook_spec_errors(self, spec: Any) -> list[str]:
        if not isinstance(spec, dict):
            return ["Webhook details must be an object."]
        events = spec.get("events")
        allowed = {
            "jira:issue_created",
            "jira:issue_updated",
            "jira:issue_deleted",
            "comment_created",
            "comment_updated",
            "comment_deleted",
            "issue_property_set",
            "issue_property_deleted",
        }
        if not isinstance(events, list) or not events or not set(events) <= allowed:
            return ["Webhook events are missing or not supported."]
        jql = spec.get("jqlFilter")
        if not isinstance(jql, str) or not jql.strip():
            return ["The jqlFilter is required."]
        problem = webhook_filter_error(jql)
        if problem is None:
            try:
                compile_query(jql, self.jql_env(self.me.account_id))
            except JqlError as exc:
                problem = str(exc)
        return [problem] if problem else []

    def list_webhooks(self, principal: Principal, start_at: int, max_results: int) -> dict[str, Any]:
        with self.lock:
            if principal.client_id is None:
                raise ApiError(403, ["Only Connect and OAuth 2.0 apps can use this operation."])
            mine = sorted(
                (w for w in self.dynamic_webhooks.values() if w.client_id == principal.client_id), key=lambda w: w.id
            )
            page = mine[start_at : start_at + max_results]
            values = []
            for w in page:
                entry: dict[str, Any] = {
                    "id": w.id,
                    "url": w.url,
                    "jqlFilter": w.jql,
                    "events": w.events,
                    "expirationDate": int(w.expires.timestamp() * 1000),
                }
                if w.field_ids is not None:
                    entry["fieldIdsFilter"] = w.field_ids
                values.append(entry)
            return {
                "isLast": start_at + len(page) >= len(mine),
                "maxResults": max_results,
                "startAt": start_at,
                "total": len(mine),
                "values": values,
            }

    def delete_webhooks(self, ids: Any, principal: Principal) -> None:
        with self.lock:
            if principal.client_id is None:
                raise ApiError(403, ["Only Connect and OAuth 2.0 apps can use this operation."])
            if not isinstance(ids, list):
                raise ApiError(400, ["'webhookIds' must be a list."])
            for wid in ids:
                hook = self.dynamic_webhooks.get(wid) if isinstance(wid, int) else None
                if hook is not None and hook.client_id == principal.client_id:
                    del self.dynamic_webhooks[wid]

    def refresh_webhooks(self, ids: Any, principal: Principal) -> dict[str, Any]:
        with self.lock:
            if principal.client_id is None:
                raise ApiError(403, ["Only Connect and OAuth 2.0 apps can use this operation."])
            if not isinstance(ids, list):
                raise ApiError(400, ["'webhookIds' must be a list."])
            expires = self.now() + timedelta(days=self.options.webhook_ttl_days)
            for wid in ids:
                hook = self.dynamic_webhooks.get(wid) if isinstance(wid, int) else None
                if hook is not None and hook.client_id == principal.client_id:  # unknown ids are ignored
                    hook.expires = expires
            return {"expirationDate": int(expires.timestamp() * 1000)}

    def register_admin_webhook(self, payload: Any) -> AdminWebhook:
        with self.lock:
            if not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
                raise ApiError(400, ["'url' is required."])
            events = payload.get("events") or []
            filters = payload.get("filters") or {}
            jql = str(filters.get("issue-related-events-section") or payload.get("jqlFilter") or "")
            compiled = None
            if jql:
                try:
                    compiled = compile_query(jql, self.jql_env(self.me.account_id))
                except JqlError as exc:
                    raise ApiError(400, [str(exc)]) from exc
            hook = AdminWebhook(
                id=next(self.admin_seq),
                name=str(payload.get("name") or "webhook"),
                url=payload["url"],
                events=list(events),
                jql=jql,
                compiled=compiled,
                secret=payload.get("secret") or None,
                exclude_body=bool(payload.get("excludeBody", False)),
                enabled=bool(payload.get("enabled", True)),
            )
            self.admin_webhooks[hook.id] = hook
            return hook

    def admin_webhook_json(self, hook: AdminWebhook) -> dict[str, Any]:
        return {
            "self": f"{self.base_url}/rest/webhooks/1.0/webhook/{hook.id}",
            "name": hook.name,
            "url": hook.url,
            "events": hook.events,
            "filters": {"issue-related-events-section": hook.jql},
            "excludeBody": hook.exclude_body,
            "enabled": hook.enabled,
        }

    def _emit(self, event: str, issue: Issue, items: list[dict[str, Any]] | None, actor: str) -> None:
        """Queue deliveries for every matching, unexpired webhook (called with the lock held)."""
        now = self.now()
        dynamic = [
            w
            for w in self.dynamic_webhooks.values()
            if event in w.events
            and w.expires > now
            and w.compiled.pred(issue)
            and (
                event != "jira:issue_updated"
                or w.field_ids is None
                or any(it["fieldId"] in w.field_ids for it in items or [])
            )
        ]
        admin = [
            h
            for h in self.admin_webhooks.values()
            if h.enabled and event in h.events and (h.compiled is None or h.compiled.pred(issue))
        ]
        if not dynamic and not admin:
            return
        payload: dict[str, Any] = {
            "timestamp": int(now.timestamp() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": {
                "jira:issue_created": "issue_created",
                "jira:issue_deleted": "issue_deleted",
            }.get(event, "issue_generic"),
            "user": self.user_json(actor),
            "issue": self.issue_json(issue),
        }
        if items is not None:
            payload["changelog"] = {"id": str(next(self.changelog_seq)), "items": items}
        by_url: dict[str, list[DynamicWebhook]] = {}
        for w in dynamic:
            by_url.setdefault(w.url, []).append(w)
        for url, hooks in by_url.items():
            body = json.dumps({**payload, "matchedWebhookIds": [w.id for w in hooks]}).encode()
            self._queue(url, body, event, [w.id for w in hooks], "dynamic", self._jwt_headers(hooks[0]))
        for hook in admin:
            body = json.dumps(
                {"timestamp": payload["timestamp"], "webhookEvent": event} if hook.exclude_body else payload
            ).encode()
            self._queue(hook.url, body, event, [hook.id], "admin", _hmac_headers(hook.secret, body))

    def _jwt_headers(self, hook: DynamicWebhook) -> Any:
        secret = self.options.oauth_client_secret
        issuer = f"jira:{self.options.cloud_id}"
        clock = self.now

        def headers(attempt: int) -> dict[str, str]:
            iat = int(clock().timestamp())
            claims = {
                "iss": issuer,
                "aud": hook.client_id,
                "sub": hook.account_id,
                "iat": iat,
                "exp": iat + 300,
                "qsh": "context-qsh",
            }
            with warnings.catch_warnings():  # the contract's default secret is short; that is the operator's choice
                warnings.simplefilter("ignore")
                token = jwt.encode(claims, secret, algorithm="HS256")
            return {"Authorization": "Bearer " + token}

        return headers

    def _queue(self, url: str, body: bytes, event: str, ids: list[int], kind: str, signer: Any) -> None:
        identifier = secrets.token_hex(16)

        def headers_for(attempt: int) -> dict[str, str]:
            return {
                "X-Atlassian-Webhook-Identifier": identifier,
                "X-Atlassian-Webhook-Retry": str(attempt),
                "X-Atlassian-Webhook-Flow": "Primary",
                **signer(attempt),
            }

        copies = 2 if self.rng.random() < self.faults.duplicate_delivery_rate else 1
        assert self.worker is not None
        for n in range(copies):
            self.worker.submit(Delivery(url, body, identifier, event, ids, kind, headers_for, duplicate=n > 0))

    def _record_delivery(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.deliveries.append(entry)
            if len(self.deliveries) > 10_000:
                del self.deliveries[:1000]

    def wait_deliveries(self, timeout: float = 10.0) -> bool:
        """Tests: block until the delivery worker is idle (all attempts and retries done)."""
        assert self.worker is not None
        return self.worker.wait_idle(timeout)

    # ------------------------------------------------------------------------------------------------ control
    def seed_issues(self, specs: list[dict[str, Any]], actor: str | None = None) -> list[Issue]:
        """Control: create issues directly (no webhooks, no rate limits); specs may set status and timestamps."""
        out = []
        with self.lock:
            who = actor or self.me.account_id
            for spec in specs:
                fields = dict(spec.get("fields") or {})
                fields.setdefault("project", {"key": spec.get("project", "PROC")})
                fields.setdefault("issuetype", {"name": spec.get("issuetype", "Task")})
                fields.setdefault("summary", spec.get("summary", "Seeded issue"))
                if "labels" in spec:
                    fields["labels"] = spec["labels"]
                when = _parse_when(spec.get("created"))
                issue = self._create({"fields": fields, "properties": spec.get("properties", [])}, who, when=when)
                if spec.get("status"):
                    target = str(spec["status"]).lower()
                    sid = next(
                        (
                            s
                            for s in seed.PROJECTS[issue.project].workflow.statuses
                            if seed.STATUSES[s].name.lower() == target
                        ),
                        None,
                    )
                    if sid is None:
                        raise ApiError(400, [f"Unknown status '{spec['status']}' for project {issue.project}."])
                    issue.status = sid
                    if seed.STATUSES[sid].category == "done":
                        issue.resolution = "10000"
                        issue.resolutiondate = issue.updated
                if spec.get("updated"):
                    issue.updated = _parse_when(spec["updated"]) or issue.updated
                self._reindex(issue.id, issue)
                out.append(issue)
        return out

    def raw_issue(self, issue: Issue) -> dict[str, Any]:
        return {
            "id": str(issue.id),
            "key": issue.key,
            "old_keys": list(issue.old_keys),
            "project": issue.project,
            "issuetype": seed.ISSUE_TYPES[issue.issuetype].name,
            "status": seed.STATUSES[issue.status].name,
            "resolution": seed.RESOLUTIONS.get(issue.resolution or ""),
            "labels": list(issue.labels),
            "summary": issue.summary,
            "description": issue.description,
            "priority": issue.priority,
            "assignee": issue.assignee,
            "reporter": issue.reporter,
            "created": issue.created.isoformat(),
            "updated": issue.updated.isoformat(),
            "fields": {k: v for k, v in issue.custom.items()},
            "properties": dict(issue.properties),
        }

    def list_raw(self, project: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [self.raw_issue(i) for i in self.issues.values() if project is None or i.project == project.upper()]


# ------------------------------------------------------------------------------------------------ helpers
_SYSTEM_FIELD_NAMES: dict[str, str] = {
    "summary": "Summary",
    "description": "Description",
    "issuetype": "Issue Type",
    "project": "Project",
    "status": "Status",
    "statusCategory": "Status Category",
    "priority": "Priority",
    "assignee": "Assignee",
    "reporter": "Reporter",
    "creator": "Creator",
    "labels": "Labels",
    "duedate": "Due date",
    "resolution": "Resolution",
    "resolutiondate": "Resolved",
    "created": "Created",
    "updated": "Updated",
    "statuscategorychangedate": "Status Category Changed",
}
_SYSTEM_SCHEMAS: dict[str, tuple[str, str | None]] = {
    "summary": ("string", None),
    "description": ("string", None),
    "issuetype": ("issuetype", None),
    "project": ("project", None),
    "status": ("status", None),
    "statusCategory": ("statusCategory", None),
    "priority": ("priority", None),
    "assignee": ("user", None),
    "reporter": ("user", None),
    "creator": ("user", None),
    "labels": ("array", "string"),
    "duedate": ("date", None),
    "resolution": ("resolution", None),
    "resolutiondate": ("datetime", None),
    "created": ("datetime", None),
    "updated": ("datetime", None),
    "statuscategorychangedate": ("datetime", None),
}
_SYSTEM_CLAUSES: dict[str, list[str]] = {
    "issuetype": ["issuetype", "type"],
    "labels": ["labels"],
    "created": ["created", "createdDate"],
    "updated": ["updated", "updatedDate"],
    "duedate": ["due", "duedate"],
    "resolutiondate": ["resolutiondate", "resolved"],
    "statuscategorychangedate": ["statusCategoryChangedDate"],
}


def _clause_suffix(kind: str) -> str:
    return {"select": "Dropdown", "textfield": "Short text", "textarea": "Paragraph"}[kind]


def _avatars(base: str) -> dict[str, str]:
    return {size: f"{base}?s={size[:2]}" for size in ("48x48", "24x24", "16x16", "32x32")}


def _select_fields(values: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return values
    wanted: set[str] = set()
    excluded: set[str] = set()
    for f in fields:
        f = f.strip()
        if f in ("*all", "*navigable"):
            wanted |= set(values)
        elif f.startswith("-"):
            excluded.add(f[1:])
        elif f:
            wanted.add(f)
    return {k: v for k, v in values.items() if k in wanted and k not in excluded}


def _hmac_headers(secret: str | None, body: bytes) -> Any:
    def headers(attempt: int) -> dict[str, str]:
        if not secret:
            return {}
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature": f"sha256={digest}"}

    return headers


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_when(value: Any) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1], validate=True).decode()
    except (ValueError, IndexError):
        return None
    email, sep, token = decoded.partition(":")
    return (email, token) if sep else None
