"""Field metadata that depends on nothing but the seed: names, schemas, clause names, screens, required fields."""

from __future__ import annotations

from typing import Any

from ml_connector.sim.jira import seed

SYSTEM_FIELD_NAMES: dict[str, str] = {
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
SYSTEM_SCHEMAS: dict[str, tuple[str, str | None]] = {
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
SYSTEM_CLAUSES: dict[str, list[str]] = {
    "issuetype": ["issuetype", "type"],
    "labels": ["labels"],
    "created": ["created", "createdDate"],
    "updated": ["updated", "updatedDate"],
    "duedate": ["due", "duedate"],
    "resolutiondate": ["resolutiondate", "resolved"],
    "statuscategorychangedate": ["statusCategoryChangedDate"],
}


def field_name(fid: str) -> str:
    if fid in seed.CUSTOM_FIELDS:
        return seed.CUSTOM_FIELDS[fid].name
    return SYSTEM_FIELD_NAMES.get(fid, fid)


def field_schema(fid: str) -> dict[str, Any] | None:
    if fid in seed.CUSTOM_FIELDS:
        cf = seed.CUSTOM_FIELDS[fid]
        kind = {"select": "option", "textfield": "string", "textarea": "string"}[cf.kind]
        return {
            "type": kind,
            "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{cf.kind}",
            "customId": cf.number,
        }
    schema = SYSTEM_SCHEMAS.get(fid)
    if schema is None:
        return None
    out: dict[str, Any] = {"type": schema[0], "system": fid}
    if schema[1]:
        out["items"] = schema[1]
    return out


def fields_json() -> list[dict[str, Any]]:
    """``GET /field``: every system field, then every custom field."""
    out: list[dict[str, Any]] = []
    for fid, name in SYSTEM_FIELD_NAMES.items():
        entry: dict[str, Any] = {
            "id": fid,
            "key": fid,
            "name": name,
            "custom": False,
            "orderable": fid in seed.SCREEN_SYSTEM_FIELDS,
            "navigable": True,
            "searchable": True,
            "clauseNames": SYSTEM_CLAUSES.get(fid, [fid]),
        }
        schema = field_schema(fid)
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
                "schema": field_schema(cf.id),
            }
        )
    return out


def screen_fields(project: seed.Project, issuetype: str) -> list[str]:
    return [*seed.SCREEN_SYSTEM_FIELDS, *project.custom_fields]


def required_fields(project: seed.Project, issuetype: str) -> set[str]:
    return {"summary", "issuetype", "project", "reporter", *project.required.get(issuetype, ())}


def _clause_suffix(kind: str) -> str:
    return {"select": "Dropdown", "textfield": "Short text", "textarea": "Paragraph"}[kind]
