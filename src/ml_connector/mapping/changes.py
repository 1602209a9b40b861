"""Field-level changes from the audit trail, by field name, for people (dashboard and ``audit`` command).

The trail does not record old values: a ``mapped`` event holds the whole draft, so a change is the difference from
the previous ``mapped`` event of the same record; a ``written_back`` event is compared with the previous write-back.
Pure: no I/O; the caller passes the trail and the names of the configured custom fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ml_connector.config.models import ConnectorConfig
from ml_connector.jira.fields import split_field_name

# Draft keys (IssueDraft.as_dict) as an operator reads them; the identity label never changes and is left out.
DRAFT_FIELDS = {
    "project": "Project",
    "issue_type": "Issue type",
    "summary": "Summary",
    "description": "Description",
    "priority": "Priority",
    "assignee_email": "Assignee",
    "labels": "Labels",
}
SOURCE_MAX_CHARS = 4000  # a stored IFS row is cut to about this size
SOURCE_VALUE_MAX = 500  # and each text value in it to this many characters
_SCALARS = (int, float, bool, type(None))  # kept as they are (a tuple: isinstance of a union is slower, per field)


class AuditEntry(Protocol):
    @property
    def event(self) -> str: ...

    @property
    def detail(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class FieldChange:
    field: str  # the name an operator knows (custom fields by their Jira name)
    old: str | None  # None: not set before
    new: str | None  # None: removed

    def __str__(self) -> str:
        return f"{self.field}: {_shown(self.old)} → {_shown(self.new)}"


def _shown(value: str | None, limit: int = 120) -> str:
    if value is None:
        return "—"
    value = " ".join(value.split())  # one line: a description's line breaks would split the table row
    return value if len(value) <= limit else value[: limit - 1] + "…"


def custom_field_names(config: ConnectorConfig, registry: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each configured custom field key → its name: ``"Cost Center:select"`` → ``"Cost Center"``; a key that is an
    id (``customfield_10042``) → the name from ``registry`` (field id → name) when known, else the id."""
    keys = list(dict.fromkeys(key for flow in config.flows for key in flow.mapping.custom_fields))
    named = {key: (registry or {}).get(split_field_name(key)[0], split_field_name(key)[0]) for key in keys}
    taken = Counter(named.values())
    # Two fields of one name (``Cost Center:text`` and ``Cost Center:select``) keep their type to tell them apart.
    return {
        key: f"{name} ({key.rpartition(':')[2]})" if taken[name] > 1 and ":" in key else name
        for key, name in named.items()
    }


def _text(value: Any) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def draft_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], names: Mapping[str, str]
) -> list[FieldChange]:
    """What differs between two drafts (``before`` None: the first draft, every set field is a change)."""
    old = _flatten(before or {}, names)
    new = _flatten(after, names)
    return [
        FieldChange(name, old.get(name), new.get(name))
        for name in dict.fromkeys([*new, *old])
        if old.get(name) != new.get(name)
    ]


def _flatten(draft: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str | None]:
    flat = {label: _text(draft.get(key)) for key, label in DRAFT_FIELDS.items()}
    custom = draft.get("custom_fields") or {}
    for key in sorted(custom):
        flat[names.get(key) or key] = _text(custom[key])
    return flat


def _mapping(detail: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    value = (detail or {}).get(key)
    return value if isinstance(value, Mapping) else None


def trail_changes(trail: Sequence[AuditEntry], names: Mapping[str, str]) -> list[list[FieldChange]]:
    """For each entry of one record's trail (oldest first), the fields it changed; empty for other events."""
    changes: list[list[FieldChange]] = []
    last_draft: Mapping[str, Any] | None = None
    last_written: Mapping[str, Any] = {}
    for entry in trail:
        found: list[FieldChange] = []
        draft = _mapping(entry.detail, "draft")
        if entry.event == "mapped" and draft is not None:
            found = draft_changes(last_draft, draft, names)
            last_draft = draft
        elif entry.event == "written_back":
            written = {f"IFS {k}": _text(v) for k, v in (_mapping(entry.detail, "changes") or {}).items()}
            found = [FieldChange(k, last_written.get(k), v) for k, v in written.items() if last_written.get(k) != v]
            last_written = {**last_written, **written}
        elif entry.event == "created" and entry.detail and entry.detail.get("jira_key"):
            found = [FieldChange("Jira issue", None, str(entry.detail["jira_key"]))]
        changes.append(found)
    return changes


def latest_source(trail: Iterable[AuditEntry]) -> Mapping[str, Any] | None:
    """The IFS row stored with the newest entry that has one (see :func:`bounded_source`)."""
    found: Mapping[str, Any] | None = None
    for entry in trail:
        found = _mapping(entry.detail, "source") or found
    return found


def bounded_source(row: Mapping[str, Any]) -> dict[str, Any]:
    """An IFS row as the audit trail keeps it: no OData annotations, long texts cut, at most ~SOURCE_MAX_CHARS in
    all (the rest named in ``…omitted``). Redaction of secrets is the audit repository's job."""
    return bounded_source_whole(row)[0]


def bounded_source_whole(row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``bounded_source(row)``, and whether it is the row's fields as they are (nothing cut, left out or written as
    text): then the row's JSON text is also the kept one's."""
    kept: dict[str, Any] = {}
    size = 0
    omitted: list[str] = []
    whole = True
    for key, value in row.items():
        if key.startswith("@"):
            continue
        if isinstance(value, str):
            if len(value) > SOURCE_VALUE_MAX:
                value, whole = value[:SOURCE_VALUE_MAX] + "…", False
            size += len(key) + len(value) + 6
        elif isinstance(value, _SCALARS):
            size += len(key) + len(str(value)) + 6
        else:
            value, whole = _shown(str(value), SOURCE_VALUE_MAX), False
            size += len(key) + len(value) + 6
        if size > SOURCE_MAX_CHARS:
            omitted.append(key)
            continue
        kept[key] = value
    if omitted:
        kept["…omitted"] = ", ".join(omitted)
    return kept, whole and not omitted
