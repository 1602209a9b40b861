"""Workflow: which transitions an issue offers, and moving it through one (status, resolution, changelog, event)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.common import ApiError
from ml_connector.sim.jira.model import Issue

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim


def available_transitions(issue: Issue) -> list[seed.Transition]:
    wf = seed.PROJECTS[issue.project].workflow
    return [t for t in wf.transitions if issue.status in t.sources]


class Workflow:
    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim

    def do_transition(self, id_or_key: str, payload: Any, actor: str) -> None:
        sim = self.sim
        with sim.lock:
            issue = sim.get_issue(id_or_key)
            sim.limits.check_issue_write(issue)
            transition = payload.get("transition") if isinstance(payload, dict) else None
            if not isinstance(transition, dict) or not (transition.get("id") or transition.get("name")):
                raise ApiError(400, ["Missing 'transition' identifier"])
            tid = str(transition.get("id") or "")
            if not tid:
                match = [t for t in available_transitions(issue) if t.name == transition.get("name")]
                tid = match[0].id if match else str(transition.get("name"))
            fields = payload.get("fields") or {}
            if not isinstance(fields, dict):
                raise ApiError(400, ["'fields' must be an object."])
            self.transition(issue, tid, fields, actor, emit=True)

    def transition(self, issue: Issue, tid: str, fields: dict[str, Any], actor: str, *, emit: bool) -> None:
        """Move ``issue`` through transition ``tid`` (called with the lock held)."""
        t = next((t for t in available_transitions(issue) if t.id == tid), None)
        if t is None:
            raise ApiError(400, [f"Transition id '{tid}' is not valid for this issue."])
        resolution = _screen_resolution(t, fields)
        sim = self.sim
        old_status = issue.status
        issue.status = t.to
        issue.status_changed = sim.now()
        items = [sim.fields.change_item("status", old_status, t.to)]
        new_resolution = issue.resolution
        if resolution is not None:
            new_resolution = resolution
        elif t.sets_resolution:
            new_resolution = t.sets_resolution
        elif t.clears_resolution:
            new_resolution = None
        if new_resolution != issue.resolution:
            items.append(sim.fields.change_item("resolution", issue.resolution, new_resolution))
            issue.resolution = new_resolution
            issue.resolutiondate = sim.now() if new_resolution else None
        sim.store.touch(issue, items, actor)
        if emit:
            sim.hooks.emit("jira:issue_updated", issue, items, actor)

    def transition_to_status(self, id_or_key: str, status_name: str, actor: str) -> Issue:
        """Control: a person moves the issue to ``status_name`` through the workflow (one transition)."""
        with self.sim.lock:
            issue = self.sim.get_issue(id_or_key)
            for t in available_transitions(issue):
                if seed.STATUSES[t.to].name.lower() == status_name.lower():
                    fields = {"resolution": {"name": "Fixed"}} if t.required_fields else {}
                    self.transition(issue, t.id, fields, actor, emit=True)
                    return issue
            raise ApiError(400, [f"No transition from '{seed.STATUSES[issue.status].name}' to '{status_name}'."])


def _screen_resolution(t: seed.Transition, fields: dict[str, Any]) -> str | None:
    """Validate the transition screen's fields; return the resolution it sets (None when none is given)."""
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
    return resolution
