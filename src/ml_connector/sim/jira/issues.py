"""Issues: the live records, their keys, and create/edit/delete/move/properties with history and events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.common import ApiError, parse_when, render_dt
from ml_connector.sim.jira.fields import find_project, resolve_issuetype, resolve_project
from ml_connector.sim.jira.model import Issue, StatusMove

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

MAX_BULK = 50
_BAD_BODY = "Can not deserialize instance of IssueUpdateDetails out of the request body."


class IssueStore:
    """The site's issues. Writes record history, feed the search index and emit webhook events."""

    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim
        self.issues: dict[int, Issue] = {}
        self.key_map: dict[str, int] = {}  # current and old keys -> id
        self.counters = {p: 0 for p in seed.PROJECTS}
        self.next_id = 10000

    def get(self, id_or_key: str) -> Issue:
        """Resolve an id or a key (current or pre-move, case-insensitive) to the live issue, or 404."""
        with self.sim.lock:
            issue_id = int(id_or_key) if id_or_key.isdigit() else self.key_map.get(id_or_key.upper())
            issue = self.issues.get(issue_id) if issue_id is not None else None
            if issue is None:
                raise ApiError(404, ["Issue does not exist or you do not have permission to see it."])
            return issue

    def _new(self, project: seed.Project, issuetype: str, when: datetime | None = None) -> Issue:
        now = when or self.sim.now()
        self.counters[project.key] += 1
        self.next_id += 1
        return Issue(
            id=self.next_id,
            key=f"{project.key}-{self.counters[project.key]}",
            project=project.key,
            issuetype=issuetype,
            status=project.workflow.initial,
            created=now,
            updated=now,
            status_changed=now,
            priority=seed.DEFAULT_PRIORITY,
        )

    def touch(self, issue: Issue, items: list[dict[str, Any]], actor: str, *, when: datetime | None = None) -> None:
        """Record a change: bump ``updated``, append history, feed the search index (now or after the lag)."""
        now = when or self.sim.now()
        issue.updated = now
        moves = [StatusMove(now, i["from"], i["to"], actor) for i in items if i.get("fieldId") == "status"]
        if moves:
            issue.status_moves = (*issue.status_moves, *moves)
        if items:
            issue.history.append(
                {
                    "id": str(next(self.sim.changelog_seq)),
                    "author": self.sim.render.user_json(actor),
                    "created": render_dt(now, self.sim.tz),
                    "items": items,
                }
            )
        self.sim.search_index.reindex(issue.id, issue)

    def create(self, payload: Any, actor: str, *, notify: bool = True) -> Issue:
        with self.sim.lock:
            issue = self._create(payload, actor)
            if notify:
                self.sim.hooks.emit("jira:issue_created", issue, None, actor)
            return issue

    def _create(self, payload: Any, actor: str, *, when: datetime | None = None) -> Issue:
        fields, update = _fields_and_update(payload, "Can not deserialize the request body: ")
        project = resolve_project(fields.get("project"))
        if project is None:
            raise ApiError(400, errors={"project": "Specify a valid project ID or key"})
        if "issuetype" not in fields:
            raise ApiError(400, errors={"issuetype": "Specify an issue type"})
        issuetype = resolve_issuetype(fields.get("issuetype"), project)
        if issuetype is None:
            raise ApiError(400, errors={"issuetype": "The issue type selected is invalid."})
        now = self.sim.now()
        probe = Issue(0, "", project.key, issuetype, project.workflow.initial, now, now, now)
        errors, changes = self.sim.fields.apply_fields(probe, project, fields, update, creating=True)
        properties = payload.get("properties") or []
        if not isinstance(properties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p for p in properties
        ):
            errors["properties"] = "Properties must be a list of objects with 'key' and 'value'."
        transition = payload.get("transition")
        if errors:
            raise ApiError(400, errors=errors)
        issue = self._new(project, issuetype, when)
        issue.reporter = actor
        for fid, raw in changes:
            self.sim.fields.set_raw(issue, fid, raw)
        for prop in properties:
            issue.properties[prop["key"]] = prop["value"]
        self.issues[issue.id] = issue
        self.key_map[issue.key] = issue.id
        if isinstance(transition, dict) and transition.get("id"):
            self.sim.workflow.transition(issue, str(transition["id"]), {}, actor, emit=False)
        self.touch(issue, [], actor, when=when)
        return issue

    def bulk_create(self, payload: Any, actor: str) -> tuple[int, dict[str, Any]]:
        updates = payload.get("issueUpdates") if isinstance(payload, dict) else None
        if not isinstance(updates, list):
            raise ApiError(400, ["Request body must contain 'issueUpdates'."])
        if len(updates) > MAX_BULK:
            raise ApiError(400, [f"The number of issues to create exceeds the maximum of {MAX_BULK}."])
        created: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        with self.sim.lock:
            for n, item in enumerate(updates):
                try:
                    issue = self._create(item, actor)
                except ApiError as exc:
                    failures.append({"status": exc.status, "elementErrors": exc.body, "failedElementNumber": n})
                    continue
                created.append(self.sim.render.created_json(issue))
                self.sim.hooks.emit("jira:issue_created", issue, None, actor)
        status = 201 if created or not updates else 400
        return status, {"issues": created, "errors": failures}

    def edit(self, id_or_key: str, payload: Any, actor: str, *, check_rate: bool = True) -> Issue:
        sim = self.sim
        with sim.lock:
            issue = self.get(id_or_key)
            if check_rate:
                sim.limits.check_issue_write(issue)
            fields, update = _fields_and_update(payload, "")
            project = seed.PROJECTS[issue.project]
            errors, changes = sim.fields.apply_fields(issue, project, fields, update, creating=False)
            properties = payload.get("properties") or []
            if errors:
                raise ApiError(400, errors=errors)
            items = [it for fid, raw in changes if (it := sim.fields.set_raw(issue, fid, raw)) is not None]
            for prop in properties if isinstance(properties, list) else []:
                if isinstance(prop, dict) and isinstance(prop.get("key"), str):
                    issue.properties[prop["key"]] = prop.get("value")
            if items or properties:
                self.touch(issue, items, actor)
                if items:
                    sim.hooks.emit("jira:issue_updated", issue, items, actor)
            return issue

    def delete(self, id_or_key: str, actor: str, *, check_rate: bool = True) -> None:
        with self.sim.lock:
            issue = self.get(id_or_key)
            if check_rate:
                self.sim.limits.check_issue_write(issue)
            del self.issues[issue.id]
            for key in [issue.key, *issue.old_keys]:
                self.key_map.pop(key, None)
            self.sim.search_index.reindex(issue.id, None)
            self.sim.hooks.emit("jira:issue_deleted", issue, None, actor)

    def move(self, id_or_key: str, target: str, issuetype: str | None, actor: str) -> Issue:
        """A person moves the issue to another project: new key, old key keeps resolving, status mapped by category."""
        with self.sim.lock:
            issue = self.get(id_or_key)
            project = find_project(target)
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
            items = _move_items(old_key, issue.key, seed.PROJECTS[old_project], project)
            if issue.status != old_status:
                items.append(self.sim.fields.change_item("status", old_status, issue.status))
                issue.status_changed = self.sim.now()
            self.touch(issue, items, actor)
            self.sim.hooks.emit("jira:issue_updated", issue, items, actor)
            return issue

    def set_property(self, id_or_key: str, key: str, value: Any) -> bool:
        with self.sim.lock:
            issue = self.get(id_or_key)
            self.sim.limits.check_issue_write(issue)
            if len(key) > 255:
                raise ApiError(400, ["The property key can not be longer than 255 characters."])
            if len(json.dumps(value)) > 32768:
                raise ApiError(400, ["The property value can not be longer than 32768 characters."])
            created = key not in issue.properties
            issue.properties[key] = value
            self.sim.search_index.reindex(issue.id, issue)
            return created

    def delete_property(self, id_or_key: str, key: str) -> None:
        with self.sim.lock:
            issue = self.get(id_or_key)
            self.sim.limits.check_issue_write(issue)
            if key not in issue.properties:
                raise ApiError(404, [f"The property with key '{key}' does not exist."])
            del issue.properties[key]
            self.sim.search_index.reindex(issue.id, issue)

    def seed(self, specs: list[dict[str, Any]], actor: str | None = None) -> list[Issue]:
        """Control: create issues directly (no webhooks, no rate limits); specs may set status and timestamps."""
        out = []
        with self.sim.lock:
            who = actor or self.sim.me.account_id
            for spec in specs:
                fields = dict(spec.get("fields") or {})
                fields.setdefault("project", {"key": spec.get("project", "PROC")})
                fields.setdefault("issuetype", {"name": spec.get("issuetype", "Task")})
                fields.setdefault("summary", spec.get("summary", "Seeded issue"))
                if "labels" in spec:
                    fields["labels"] = spec["labels"]
                when = parse_when(spec.get("created"))
                issue = self._create({"fields": fields, "properties": spec.get("properties", [])}, who, when=when)
                if spec.get("status"):
                    _force_status(issue, str(spec["status"]))
                if spec.get("updated"):
                    issue.updated = parse_when(spec["updated"]) or issue.updated
                self.sim.search_index.reindex(issue.id, issue)
                out.append(issue)
        return out

    def list_raw(self, project: str | None = None) -> list[dict[str, Any]]:
        with self.sim.lock:
            wanted = [i for i in self.issues.values() if project is None or i.project == project.upper()]
            return [self.sim.render.raw_issue(i) for i in wanted]


def _fields_and_update(payload: Any, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(payload, dict):
        raise ApiError(400, [_BAD_BODY])
    fields = payload.get("fields") or {}
    update = payload.get("update") or {}
    if not isinstance(fields, dict) or not isinstance(update, dict):
        raise ApiError(400, [prefix + "'fields' and 'update' must be objects."])
    return fields, update


def _force_status(issue: Issue, status: str) -> None:
    """Seeding: put the issue straight into a status of its workflow (done statuses get a resolution)."""
    target = status.lower()
    workflow = seed.PROJECTS[issue.project].workflow
    sid = next((s for s in workflow.statuses if seed.STATUSES[s].name.lower() == target), None)
    if sid is None:
        raise ApiError(400, [f"Unknown status '{status}' for project {issue.project}."])
    issue.status = sid
    if seed.STATUSES[sid].category == "done":
        issue.resolution = "10000"
        issue.resolutiondate = issue.updated


def _move_items(old_key: str, new_key: str, old: seed.Project, new: seed.Project) -> list[dict[str, Any]]:
    return [
        {
            "field": "Key",
            "fieldtype": "jira",
            "fieldId": "key",
            "from": None,
            "fromString": old_key,
            "to": None,
            "toString": new_key,
        },
        {
            "field": "project",
            "fieldtype": "jira",
            "fieldId": "project",
            "from": old.id,
            "fromString": old.name,
            "to": new.id,
            "toString": new.name,
        },
    ]
