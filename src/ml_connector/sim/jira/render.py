"""Rendering: the simulator's issues, users and reference data as Jira Cloud's JSON shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.common import ApiError, render_dt
from ml_connector.sim.jira.fieldmeta import field_name, field_schema, required_fields, screen_fields
from ml_connector.sim.jira.model import Issue
from ml_connector.sim.jira.workflow import available_transitions

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

_ISSUE_EXPANDS = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


class Renderer:
    """Turns state into JSON; reads the site's base URL, time zone and users, changes nothing."""

    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim

    def api(self, path: str) -> str:
        return f"{self.sim.base_url}/rest/api/3/{path}"

    def user_json(self, account_id: str | None, *, full: bool = False) -> dict[str, Any] | None:
        if account_id is None:
            return None
        user = self.sim.users_by_id.get(account_id)
        if user is None:
            return None
        out: dict[str, Any] = {
            "self": self.api(f"user?accountId={user.account_id}"),
            "accountId": user.account_id,
            "accountType": user.account_type,
            "avatarUrls": _avatars(f"{self.sim.base_url}/avatar/{user.account_id[-6:]}"),
            "displayName": user.display_name,
            "active": True,
            "timeZone": user.time_zone,
        }
        if not user.email_hidden:
            out["emailAddress"] = user.email
        if full:
            out["locale"] = "en_US"
        return out

    def project_json(self, project: seed.Project, *, expand: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": self.api(f"project/{project.id}"),
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "avatarUrls": _avatars(f"{self.sim.base_url}/avatar/project/{project.id}"),
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
            "self": self.api(f"issuetype/{it.id}"),
            "id": it.id,
            "name": it.name,
            "description": it.description,
            "iconUrl": f"{self.sim.base_url}/images/icons/issuetypes/{it.id}.svg",
            "subtask": False,
            "hierarchyLevel": 0,
        }

    def status_json(self, status_id: str) -> dict[str, Any]:
        status = seed.STATUSES[status_id]
        cat = seed.CATEGORIES[status.category]
        return {
            "self": self.api(f"status/{status.id}"),
            "description": "",
            "iconUrl": f"{self.sim.base_url}/images/icons/statuses/generic.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": {
                "self": self.api(f"statuscategory/{cat.id}"),
                "id": cat.id,
                "key": cat.key,
                "colorName": cat.color,
                "name": cat.name,
            },
        }

    def priority_json(self, pid: str) -> dict[str, Any]:
        _, name, color = next(p for p in seed.PRIORITIES if p[0] == pid)
        return {
            "self": self.api(f"priority/{pid}"),
            "iconUrl": f"{self.sim.base_url}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": pid,
            "statusColor": color,
            "description": f"{name} priority.",
        }

    def resolution_json(self, rid: str | None) -> dict[str, Any] | None:
        if rid is None:
            return None
        return {"self": self.api(f"resolution/{rid}"), "id": rid, "name": seed.RESOLUTIONS[rid], "description": ""}

    def option_json(self, oid: str, label: str) -> dict[str, Any]:
        return {"self": self.api(f"customFieldOption/{oid}"), "value": label, "id": oid}

    def custom_json(self, fid: str, value: Any) -> Any:
        cf = seed.CUSTOM_FIELDS[fid]
        if value is None:
            return None
        if cf.kind == "select":
            return self.option_json(value, dict(cf.options)[value])
        return value

    def field_values(self, issue: Issue) -> dict[str, Any]:
        project = seed.PROJECTS[issue.project]
        tz = self.sim.tz
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
            "resolutiondate": render_dt(issue.resolutiondate, tz) if issue.resolutiondate else None,
            "created": render_dt(issue.created, tz),
            "updated": render_dt(issue.updated, tz),
            "statuscategorychangedate": render_dt(issue.status_changed, tz),
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
        if for_search and fields == ["id"]:
            return {"id": str(issue.id)}
        selected = _select_fields(self.field_values(issue), fields)
        out: dict[str, Any] = {
            "expand": _ISSUE_EXPANDS,
            "id": str(issue.id),
            "self": self.api(f"issue/{issue.id}"),
            "key": issue.key,
            "fields": selected,
        }
        out.update(self._expansions(issue, selected, {e.strip() for e in expand.split(",") if e.strip()}))
        if properties:
            wanted = (
                issue.properties
                if "*all" in properties
                else {k: issue.properties[k] for k in properties if k in issue.properties}
            )
            out["properties"] = dict(wanted)
        return out

    def _expansions(self, issue: Issue, selected: dict[str, Any], expands: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "names" in expands:
            out["names"] = {k: field_name(k) for k in selected}
        if "schema" in expands:
            out["schema"] = {k: field_schema(k) for k in selected if field_schema(k)}
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
        return out

    def transitions_json(self, issue: Issue, *, with_fields: bool) -> list[dict[str, Any]]:
        out = []
        for t in available_transitions(issue):
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
                entry["fields"] = {fid: self._transition_field(fid, t) for fid in t.screen_fields}
            out.append(entry)
        return out

    def _transition_field(self, fid: str, t: seed.Transition) -> dict[str, Any]:
        return {
            "required": fid in t.required_fields,
            "schema": {"type": "resolution", "system": "resolution"},
            "name": "Resolution",
            "key": fid,
            "hasDefaultValue": False,
            "operations": ["set"],
            "allowedValues": [self.resolution_json(r) for r in seed.RESOLUTIONS],
        }

    def created_json(self, issue: Issue) -> dict[str, Any]:
        return {"id": str(issue.id), "key": issue.key, "self": self.api(f"issue/{issue.id}")}

    def allowed_values(self, fid: str, project: seed.Project) -> list[Any] | None:
        if fid == "priority":
            return [self.priority_json(p[0]) for p in seed.PRIORITIES]
        if fid == "issuetype":
            return [self.issuetype_json(seed.ISSUE_TYPES[t]) for t in project.issue_types]
        if fid == "project":
            return [self.project_json(project)]
        if fid in seed.CUSTOM_FIELDS and seed.CUSTOM_FIELDS[fid].kind == "select":
            return [self.option_json(oid, val) for oid, val in seed.CUSTOM_FIELDS[fid].options]
        return None

    def createmeta_fields(self, project: seed.Project, issuetype_id: str) -> list[dict[str, Any]]:
        if issuetype_id not in project.issue_types:
            raise ApiError(404, ["Issue type with id '" + issuetype_id + "' does not exist or is not visible."])
        required = required_fields(project, issuetype_id)
        out = []
        for fid in screen_fields(project, issuetype_id):
            entry: dict[str, Any] = {
                "required": fid in required,
                "schema": field_schema(fid) or {"type": "string", "system": fid},
                "name": field_name(fid),
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
                entry["autoCompleteUrl"] = self.api("user/search?query=")
            out.append(entry)
        return out

    def raw_issue(self, issue: Issue) -> dict[str, Any]:
        """The control API's plain view of an issue (names, not ids; ISO timestamps)."""
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
