"""JQL field names: which field a name means (aliases, ``cf[n]``, custom names, issue properties), how ORDER BY sorts
by it, and the subset the dynamic-webhook ``jqlFilter`` accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ml_connector.sim.jira.jqlparse import Clause, JqlError, Node, NotOp, parse
from ml_connector.sim.jira.model import Issue
from ml_connector.sim.jira.seed import CATEGORIES, CUSTOM_FIELDS, ISSUE_TYPES, PROJECTS, STATUSES

CF_RE = re.compile(r"cf\[(\d+)\]$", re.IGNORECASE)
PROP_RE = re.compile(r"issue\.property\[([^\]]+)\](?:\.(.+))?$", re.IGNORECASE)


def field_missing(name: str) -> JqlError:
    return JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")


_SYSTEM_ALIASES = {
    "project": "project",
    "issuetype": "issuetype",
    "type": "issuetype",
    "status": "status",
    "statuscategory": "statusCategory",
    "category": "statusCategory",
    "labels": "labels",
    "label": "labels",
    "key": "key",
    "issuekey": "key",
    "id": "key",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "assignee": "assignee",
    "reporter": "reporter",
    "summary": "summary",
    "description": "description",
    "text": "text",
    "priority": "priority",
    "resolution": "resolution",
    "resolutiondate": "resolutiondate",
    "resolved": "resolutiondate",
    "duedate": "duedate",
    "due": "duedate",
}


def resolve_field(name: str) -> tuple[str, list[str]]:
    """(canonical field, custom field ids) for a clause name; raises for unknown fields."""
    low = name.lower()
    if low in _SYSTEM_ALIASES:
        return _SYSTEM_ALIASES[low], []
    m = CF_RE.match(name)
    if m:
        fid = f"customfield_{m.group(1)}"
        if fid not in CUSTOM_FIELDS:
            raise field_missing(name)
        return "custom", [fid]
    if PROP_RE.match(name):
        return "property", []
    ids = [f.id for f in CUSTOM_FIELDS.values() if f.name.lower() == low]
    if ids:
        return "custom", ids  # a name shared by several fields searches all of them, as Jira does
    raise field_missing(name)


def sort_key(name: str) -> Callable[[Issue], Any]:
    """A sort key (None-safe: empty values sort last ascending) for an ORDER BY field."""
    canon, cf_ids = resolve_field(name)
    simple: dict[str, Callable[[Issue], Any]] = {
        "key": lambda i: (i.project, i.number),
        "created": lambda i: i.created,
        "updated": lambda i: i.updated,
        "resolutiondate": lambda i: i.resolutiondate,
        "priority": lambda i: None if i.priority is None else -int(i.priority),
        "status": lambda i: STATUSES[i.status].name,
        "statusCategory": lambda i: CATEGORIES[STATUSES[i.status].category].id,
        "summary": lambda i: i.summary.lower(),
        "project": lambda i: PROJECTS[i.project].name,
        "issuetype": lambda i: ISSUE_TYPES[i.issuetype].name,
        "assignee": lambda i: i.assignee,
        "reporter": lambda i: i.reporter,
        "duedate": lambda i: i.duedate,
        "resolution": lambda i: i.resolution,
    }
    if canon in simple:
        get = simple[canon]
    elif canon == "custom":
        fid = cf_ids[0]

        def get(i: Issue) -> Any:
            return i.custom.get(fid)
    else:
        raise JqlError(f"Not able to sort using field '{name}'.")

    def key(i: Issue) -> tuple[bool, Any]:
        value = get(i)
        return (value is None, value if value is not None else 0)

    return key


def sort_issues(issues: list[Issue], order: tuple[tuple[str, bool], ...]) -> list[Issue]:
    """Stable multi-key sort; without ORDER BY, newest first (by id, which follows creation)."""
    result = sorted(issues, key=lambda i: i.id, reverse=not order)
    for name, desc in reversed(order):
        result.sort(key=sort_key(name), reverse=desc)
    return result


# Fields and operators the dynamic-webhook ``jqlFilter`` accepts (Jira documents a small subset).
_WEBHOOK_FIELDS = {"issuekey", "key", "project", "issuetype", "type", "status", "assignee", "reporter"}


def webhook_filter_error(text: str) -> str | None:
    """Jira's error for a jqlFilter outside the webhook subset, or None when it is acceptable."""
    try:
        query = parse(text)
    except JqlError as exc:
        return str(exc)
    if query.order:
        return "The clause ORDER BY is unsupported"

    def walk(n: Node | None) -> str | None:
        if n is None:
            return None
        if isinstance(n, Clause):
            low = n.field.lower()
            if low not in _WEBHOOK_FIELDS and not CF_RE.match(n.field) and not PROP_RE.match(n.field):
                return f"The clause {n.field} is unsupported"
            if n.op not in ("=", "!=", "in", "not in"):
                return f"The operator {n.op.upper()} is unsupported"
            return None
        if isinstance(n, NotOp):
            return walk(n.item)
        return next((e for e in (walk(i) for i in n.items) if e), None)

    return walk(query.where)
