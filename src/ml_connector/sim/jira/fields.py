"""Field validation: what a create or edit may set, how each value is checked, and the changelog item it leaves."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ml_connector.sim.jira import seed
from ml_connector.sim.jira.adf import validate_adf
from ml_connector.sim.jira.common import ApiError
from ml_connector.sim.jira.fieldmeta import field_name, required_fields, screen_fields
from ml_connector.sim.jira.model import Issue

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

Check = tuple[str | None, Any]  # (error message or None, the raw value to store)
_ID_FIELDS = ("priority", "assignee", "reporter", "status", "resolution", "issuetype", "project")


def find_project(key_or_id: str) -> seed.Project:
    for p in seed.PROJECTS.values():
        if key_or_id in (p.key, p.id) or key_or_id.upper() == p.key:
            return p
    raise ApiError(404, [f"No project could be found with key '{key_or_id}'."])


def resolve_project(value: Any) -> seed.Project | None:
    if not isinstance(value, dict):
        return None
    ref = value.get("key") or value.get("id")
    if not isinstance(ref, str | int):
        return None
    for p in seed.PROJECTS.values():
        if str(ref) in (p.key, p.id):
            return p
    return None


def resolve_issuetype(value: Any, project: seed.Project) -> str | None:
    if not isinstance(value, dict):
        return None
    ref = value.get("id") or value.get("name")
    for tid in project.issue_types:
        if str(ref) in (tid, seed.ISSUE_TYPES[tid].name):
            return tid
    return None


def raw_value(issue: Issue, fid: str) -> Any:
    if fid in seed.CUSTOM_FIELDS:
        return issue.custom.get(fid)
    return getattr(issue, fid, None)


class FieldValidator:
    """Checks ``fields``/``update`` payloads against the screen and applies them; knows the users for user fields."""

    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim

    def apply_fields(
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
        screen = set(screen_fields(project, issue.issuetype))
        ignored = {"project", "issuetype"} if creating else {"status", "project", "issuetype"}
        for fid in set(fields) & set(update):
            errors[fid] = f"Field '{fid}' cannot be set in both fields and update."
        merged = _merge_updates(issue, fields, update, errors)
        for fid, value in merged.items():
            if fid in errors or fid in ignored:
                continue
            if fid not in screen:
                errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            msg, raw = self.check_value(fid, value)
            if msg:
                errors[fid] = msg
            else:
                changes.append((fid, raw))
        _check_required(issue, project, changes, errors, creating=creating)
        return errors, changes

    def check_value(self, fid: str, value: Any) -> Check:
        if fid in ("assignee", "reporter"):
            return self._check_user(value)
        check = _SYSTEM_CHECKS.get(fid)
        if check is not None:
            return check(value)
        return _check_custom(fid, value)

    def _check_user(self, value: Any) -> Check:
        if value is None:
            return None, None
        ref = value.get("accountId") or value.get("id") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref in self.sim.users_by_id:
            return None, ref
        return "Specified user does not exist or you do not have required permissions", None

    def set_raw(self, issue: Issue, fid: str, raw: Any) -> dict[str, Any] | None:
        """Set one field; return its changelog item (None when unchanged)."""
        old = raw_value(issue, fid)
        if old == raw:
            return None
        if fid in seed.CUSTOM_FIELDS:
            issue.custom[fid] = raw
        else:
            setattr(issue, fid, raw)
        return self.change_item(fid, old, raw)

    def change_item(self, fid: str, old: Any, new: Any) -> dict[str, Any]:
        ids = fid in _ID_FIELDS or (fid in seed.CUSTOM_FIELDS and seed.CUSTOM_FIELDS[fid].kind == "select")
        custom = fid in seed.CUSTOM_FIELDS
        return {
            "field": field_name(fid) if custom else fid,
            "fieldtype": "custom" if custom else "jira",
            "fieldId": fid,
            "from": (str(old) if old is not None else None) if ids else None,
            "fromString": self._text(fid, old),
            "to": (str(new) if new is not None else None) if ids else None,
            "toString": self._text(fid, new),
        }

    def _text(self, fid: str, raw: Any) -> str | None:
        """A raw value as the changelog's ``fromString``/``toString`` shows it."""
        if raw is None:
            return None
        if fid == "labels":
            return " ".join(raw)
        if fid == "priority":
            return next(p[1] for p in seed.PRIORITIES if p[0] == raw)
        if fid in ("assignee", "reporter"):
            user = self.sim.users_by_id.get(raw)
            return user.display_name if user else str(raw)
        if fid == "status":
            return seed.STATUSES[raw].name
        if fid == "resolution":
            return seed.RESOLUTIONS[raw]
        if fid in seed.CUSTOM_FIELDS and seed.CUSTOM_FIELDS[fid].kind == "select":
            return dict(seed.CUSTOM_FIELDS[fid].options)[raw]
        if isinstance(raw, dict):
            return "(document)"
        return str(raw)


def _merge_updates(
    issue: Issue, fields: dict[str, Any], update: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """Normalise ``update`` operations into plain values on top of ``fields``; record bad operations in ``errors``."""
    merged: dict[str, Any] = dict(fields)
    for fid, ops in update.items():
        if fid in errors:
            continue
        if not isinstance(ops, list):
            errors[fid] = "Operation value must be a list of operations."
            continue
        if fid == "labels":
            merged[fid] = _label_ops(list(issue.labels), ops, errors)
            continue
        for op in ops:
            if isinstance(op, dict) and set(op) == {"set"}:
                merged[fid] = op["set"]
            else:
                errors[fid] = f"Only the 'set' operation is supported for field '{fid}'."
    return merged


def _label_ops(labels: list[str], ops: list[Any], errors: dict[str, str]) -> list[str]:
    for op in ops:
        if not isinstance(op, dict) or len(op) != 1:
            errors["labels"] = "Invalid operation."
            break
        verb, arg = next(iter(op.items()))
        if verb == "add" and isinstance(arg, str):
            if arg not in labels:
                labels.append(arg)
        elif verb == "remove" and isinstance(arg, str):
            labels = [lb for lb in labels if lb != arg]
        elif verb == "set" and isinstance(arg, list):
            labels = list(arg)
        else:
            errors["labels"] = f"Operation '{verb}' is not supported for field 'labels'."
            break
    return labels


def _check_required(
    issue: Issue,
    project: seed.Project,
    changes: list[tuple[str, Any]],
    errors: dict[str, str],
    *,
    creating: bool,
) -> None:
    required = required_fields(project, issue.issuetype) - {"project", "issuetype", "reporter"}
    after = dict(changes)
    for fid in required:
        if fid in errors:
            continue
        present = after[fid] if fid in after else (None if creating else raw_value(issue, fid))
        if present in (None, "", []):
            errors[fid] = (
                "You must specify a summary of the issue." if fid == "summary" else f"{field_name(fid)} is required."
            )


def _check_summary(value: Any) -> Check:
    if not isinstance(value, str):
        return "Operation value must be a string", None
    if len(value) > 255:
        return "Summary must be less than 255 characters.", None
    if "\n" in value or "\r" in value:
        return "The summary is invalid because it contains newline characters.", None
    return None, value.strip()


def _check_document(value: Any) -> Check:
    if value is None:
        return None, None
    return validate_adf(value), value


def _check_priority(value: Any) -> Check:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return "Specify the Priority (id or name) in the string format", None
    ref = value.get("id") or value.get("name")
    for pid, name, _ in seed.PRIORITIES:
        if ref in (pid, name):
            return None, pid
    return "The priority selected is invalid.", None


def _check_labels(value: Any) -> Check:
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


def _check_duedate(value: Any) -> Check:
    if value is None:
        return None, None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return f"Error parsing date string: {value}", None
    return None, value


_SYSTEM_CHECKS: dict[str, Callable[[Any], Check]] = {
    "summary": _check_summary,
    "description": _check_document,
    "environment": _check_document,
    "priority": _check_priority,
    "labels": _check_labels,
    "duedate": _check_duedate,
}


def _check_custom(fid: str, value: Any) -> Check:
    cf = seed.CUSTOM_FIELDS.get(fid)
    if cf is None:
        return f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown.", None
    if value is None:
        return None, None
    if cf.kind == "select":
        return _check_option(cf, value)
    if cf.kind == "textarea":
        return validate_adf(value), value
    if not isinstance(value, str):
        return "Operation value must be a string", None
    if len(value) > 255:
        return "The entered text is too long. It exceeds the allowed limit of 255 characters.", None
    return None, value


def _check_option(cf: seed.CustomField, value: Any) -> Check:
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
