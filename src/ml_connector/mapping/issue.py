"""Pure mapping: IFS record + lookups + config → ``IssueDraft``; Jira status → ``IfsUpdate``.

Nothing here does I/O. Everything a mapping needs from the outside (lookups read once per run, Jira metadata resolved
once per run) arrives in a ``MappingContext``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from ml_connector import reasons as r
from ml_connector.config.models import FlowConfig, IssueMapping, ValueMap, WritebackMapping
from ml_connector.errors import MappingError
from ml_connector.template import namespace, render, resolve_value

SUMMARY_MAX = 255
IDENTITY_PROPERTY = "ml-connector"
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
# C0 controls except tab and newline, DEL, and C1 controls: Jira stores them verbatim and they break its UI and
# exports (NUL, BEL, ESC sequences). Tab and newline are kept: descriptions and text areas use them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> tuple[str, int]:
    """``text`` without control characters (tab and newline kept, CR dropped), and how many were removed."""
    if text.isprintable():  # no control character at all (most mapped text), found without the regex
        return text, 0
    cleaned, removed = _CONTROL.subn("", text)
    return cleaned, removed


@dataclass(frozen=True)
class FieldTarget:
    """A Jira field resolved once per run: id plus what values it accepts."""

    id: str
    kind: str  # "text" | "textarea" | "select" | "number" | "labels" | other schema type
    allowed: frozenset[str] | None = None


@dataclass(frozen=True)
class MappingContext:
    """Everything outside the record that mapping needs; built once per run."""

    suppliers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    persons: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    projects: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    jira_projects: frozenset[str] | None = None  # None: not checked (dry runs without Jira metadata)
    priorities: frozenset[str] | None = None
    fields: Mapping[str, FieldTarget] = field(default_factory=dict)


@dataclass(frozen=True)
class IssueDraft:
    """What the Jira issue should look like; ``content_hash`` decides whether Jira needs a call."""

    project: str
    issue_type: str
    summary: str
    description: str | None
    priority: str | None
    assignee_email: str | None
    custom_fields: Mapping[str, str]  # Jira field name → value
    labels: tuple[str, ...]
    identity_label: str
    warnings: tuple[str, ...] = ()
    notes: tuple[r.Reason, ...] = ()  # the warnings' reasons, for grouped summaries

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "issue_type": self.issue_type,
            "summary": self.summary,
            "description": self.description,
            "priority": self.priority,
            "assignee_email": self.assignee_email,
            "custom_fields": dict(sorted(self.custom_fields.items())),
            "labels": list(self.labels),
            "identity_label": self.identity_label,
        }

    @property
    def content_hash(self) -> str:
        # Warnings are not content: a warning alone must not cause a Jira edit.
        return text_hash(self._canonical[0])

    @property
    def json_text(self) -> str | None:
        """``as_dict()`` as ``json.dumps(..., sort_keys=True)`` writes it, when that is the text ``content_hash``
        digests (plain ASCII JSON), else None: the audit trail takes it instead of encoding the draft again."""
        text, plain = self._canonical
        return text if plain else None

    @cached_property
    def _canonical(self) -> tuple[str, bool]:
        """(the canonical text of ``as_dict()``, whether it is plain): encoded once for the hash and the audit."""
        return canonical_json(self.as_dict())


def stable_hash(value: Any) -> str:
    return text_hash(_CANONICAL.encode(value))


def text_hash(text: str) -> str:
    """The hash of a canonical text (``canonical_json``): the one rule behind every stored source and draft hash,
    which must not change, or every record would be mapped again after an upgrade."""
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_json(value: Any) -> tuple[str, bool]:
    """(the text ``stable_hash`` digests, whether it is plain JSON (``is_plain_json``)): a plain text is also what
    the audit trail writes for ``value``, so it can be taken instead of encoding ``value`` again."""
    try:
        text = _PLAIN.encode(value)
    except (TypeError, ValueError):  # a value only ``default=str`` can write
        return _CANONICAL.encode(value), False
    return text, is_plain_json(text)


def is_plain_json(text: str) -> bool:
    """JSON text that every encoder of this project writes alike from its value: ASCII without DEL (so
    ``ensure_ascii`` changes nothing: it escapes DEL too), no NUL and no NaN or infinity (``store.db.json_safe``
    would replace those). Conservative: such a word inside a string also says no."""
    if not text.isascii() or "\x7f" in text:
        return False
    return "\\u0000" not in text and "NaN" not in text and "Infinity" not in text


# json.dumps(value, sort_keys=True, default=str, ensure_ascii=False), without a new encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, default=str, ensure_ascii=False)
# The same without ``default``: what it refuses is not plain JSON.
_PLAIN = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def identity_label(flow: str, key: str) -> str:
    """The label that marks an issue as the one for (flow, key); unique, and safe as a Jira label (no spaces)."""
    safe = _LABEL_UNSAFE.sub("_", key)
    label = f"mlc-{flow}-{safe}"
    if safe != key or len(label) > 200:
        digest = hashlib.sha1(f"{flow}\x00{key}".encode(), usedforsecurity=False).hexdigest()[:10]
        label = f"{label[:180]}-{digest}"
    return label


def build_context(
    record: Mapping[str, Any], flow: FlowConfig, ctx: MappingContext, lines: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The namespace templates read from: the record's fields plus joined lookups."""
    values: dict[str, Any] = {k: v for k, v in record.items() if not k.startswith("@")}
    supplier_key = record.get(flow.supplier_field) if flow.supplier_field else None
    values["supplier"] = ctx.suppliers.get(str(supplier_key)) if supplier_key is not None else None
    if flow.mapping.assignee is not None:
        person_id = resolve_value(flow.mapping.assignee.source, values)
        values["person"] = ctx.persons.get(str(person_id)) if person_id is not None else None
    project_id = record.get("ProjectId")
    values["project"] = ctx.projects.get(str(project_id)) if project_id is not None else None
    values["lines"] = list(lines)
    values["line"] = lines[0] if lines else None
    values["flow"] = flow.name
    values["key"] = record.get(flow.key)
    return values


_UNMAPPED = {"project": r.UNMAPPED_PROJECT, "priority": r.UNMAPPED_PRIORITY}


def _lookup(vm: ValueMap, values: Mapping[str, Any], what: str) -> str | None:
    return _mapped(vm, resolve_value(vm.source, values), what)


def _mapped(vm: ValueMap, raw: Any, what: str) -> str | None:
    """The Jira value for the source value ``raw``."""
    text = "" if raw is None else str(raw)
    if text in vm.map:
        return vm.map[text]
    if vm.default is not None:
        return vm.default
    if not vm.map and text:
        return text  # no map at all: the source value is the Jira value
    raise MappingError(
        f"no {what} mapped for {vm.source}={text!r} and no default",
        field=what,
        reason=_UNMAPPED.get(what, r.UNMAPPED_OPTION),
        value=text,
        unmapped=True,
    )


class _Cleaner:
    """Removes control characters from mapped text and counts, per field, how many it removed."""

    def __init__(self) -> None:
        self.removed: dict[str, int] = {}

    def __call__(self, text: str, what: str) -> str:
        result, removed = clean_text(text)
        if removed:
            self.removed[what] = self.removed.get(what, 0) + removed
        return result

    def warning(self) -> str | None:
        if not self.removed:
            return None
        removed = ", ".join(f"{n} from {what}" for what, n in sorted(self.removed.items()))
        return f"removed control characters Jira would store verbatim ({removed})"


def map_issue(
    record: Mapping[str, Any],
    flow: FlowConfig,
    ctx: MappingContext,
    *,
    lines: Sequence[Mapping[str, Any]] = (),
) -> IssueDraft:
    """Map one IFS record; raises ``MappingError`` with a reason a person can act on."""
    mapping: IssueMapping = flow.mapping
    key = record.get(flow.key)
    if key is None or not str(key).strip():
        shown = "" if key is None else f" ({str(key)!r})"
        raise MappingError(
            f"record has a blank {flow.key}{shown}; it cannot be identified in Jira", field=flow.key, reason=r.BLANK_KEY
        )
    values = namespace(build_context(record, flow, ctx, lines))  # built once, read by every template below
    clean = _Cleaner()
    warnings: list[tuple[r.Reason, str]] = []
    project = _project(mapping, values, ctx)
    summary = _summary(mapping, values, clean)
    description = clean(render(mapping.description, values), "description").strip() if mapping.description else None
    priority = _priority(mapping, values, ctx)
    assignee_email = _assignee_email(values, mapping, ctx, warnings)
    custom = _custom_fields(mapping, values, ctx, clean)
    label = identity_label(flow.name, str(key))
    labels = _labels(mapping, values, label, clean)
    if (cleaned := clean.warning()) is not None:
        warnings.append((r.Reason(r.CONTROL_CHARACTERS), cleaned))
    return IssueDraft(
        project=project,
        issue_type=mapping.issue_type,
        summary=summary,
        description=description or None,
        priority=priority,
        assignee_email=assignee_email,
        custom_fields=custom,
        labels=labels,
        identity_label=label,
        warnings=tuple(text for _, text in warnings),
        notes=tuple(reason for reason, _ in warnings),
    )


def _project(mapping: IssueMapping, values: Mapping[str, Any], ctx: MappingContext) -> str:
    project = _lookup(mapping.project, values, "project")
    if project is None:
        raise MappingError("no Jira project for this record", field="project", reason=r.UNMAPPED_PROJECT)
    if ctx.jira_projects is not None and project not in ctx.jira_projects:
        raise MappingError(
            f"Jira project {project!r} does not exist or is not visible",
            field="project",
            reason=r.UNKNOWN_PROJECT,
            value=project,
        )
    return project


def _summary(mapping: IssueMapping, values: Mapping[str, Any], clean: _Cleaner) -> str:
    summary = " ".join(clean(render(mapping.summary, values), "summary").split())
    if not summary:
        raise MappingError("summary is empty after mapping", field="summary", reason=r.EMPTY_SUMMARY)
    if len(summary) > SUMMARY_MAX:
        raise MappingError(
            f"summary is {len(summary)} characters; Jira allows {SUMMARY_MAX}",
            field="summary",
            reason=r.SUMMARY_TOO_LONG,
        )
    return summary


def _priority(mapping: IssueMapping, values: Mapping[str, Any], ctx: MappingContext) -> str | None:
    priority = _lookup(mapping.priority, values, "priority") if mapping.priority else None
    if priority is not None and ctx.priorities is not None and priority not in ctx.priorities:
        raise MappingError(
            f"priority {priority!r} does not exist in Jira", field="priority", reason=r.UNKNOWN_PRIORITY, value=priority
        )
    return priority


def _custom_fields(
    mapping: IssueMapping, values: Mapping[str, Any], ctx: MappingContext, clean: _Cleaner
) -> dict[str, str]:
    custom: dict[str, str] = {}
    for name, spec in mapping.custom_fields.items():
        value = _custom_value(name, spec, values, ctx, clean)
        if value:
            custom[name] = value
    return custom


def _custom_value(
    name: str, spec: str | ValueMap, values: Mapping[str, Any], ctx: MappingContext, clean: _Cleaner
) -> str:
    """One custom field's value ("" for none); a value the field does not allow is a ``MappingError``."""
    if isinstance(spec, ValueMap):
        source = resolve_value(spec.source, values)
        value = "" if source in (None, "") else clean(_mapped(spec, source, name) or "", name).strip()
    else:
        value = clean(render(spec, values), name).strip()
    info = ctx.fields.get(name)
    if value and info is not None and info.allowed is not None and value not in info.allowed:
        raise MappingError(
            f"{value!r} is not an allowed value of Jira field {name!r}",
            field=name,
            reason=r.OPTION_NOT_ALLOWED,
            value=value,
        )
    return value


def mapping_problems(
    record: Mapping[str, Any],
    flow: FlowConfig,
    ctx: MappingContext,
    *,
    lines: Sequence[Mapping[str, Any]] = (),
) -> list[MappingError]:
    """Every reason :func:`map_issue` would refuse ``record``, not only the first (``check --sample`` groups them)."""
    try:
        map_issue(record, flow, ctx, lines=lines)
    except MappingError:
        pass
    else:
        return []
    mapping, values, clean = flow.mapping, build_context(record, flow, ctx, lines), _Cleaner()
    steps: list[Callable[[], object]] = [
        lambda: _project(mapping, values, ctx),
        lambda: _summary(mapping, values, clean),
        lambda: _priority(mapping, values, ctx),
    ]
    steps += [partial(_custom_value, name, spec, values, ctx, clean) for name, spec in mapping.custom_fields.items()]
    problems: list[MappingError] = []
    for step in steps:
        try:
            step()
        except MappingError as exc:
            problems.append(exc)
    if not problems:  # a blank key, or anything map_issue checks beyond these steps
        try:
            map_issue(record, flow, ctx, lines=lines)
        except MappingError as exc:
            problems.append(exc)
    return problems


def _labels(mapping: IssueMapping, values: Mapping[str, Any], identity: str, clean: _Cleaner) -> tuple[str, ...]:
    """The identity label first, then the configured ones (made safe for Jira), each once."""
    labels = [identity]
    for template in mapping.labels:
        text = clean(render(template, values), "labels").strip()
        if text:
            labels.append(_LABEL_UNSAFE.sub("_", text)[:255])
    return tuple(dict.fromkeys(labels))


def _assignee_email(
    values: Mapping[str, Any], mapping: IssueMapping, ctx: MappingContext, warnings: list[tuple[r.Reason, str]]
) -> str | None:
    """Person id → email (static map, then IFS persons); a source that already holds an email is used as is."""
    spec = mapping.assignee
    if spec is None:
        return None
    person_id = resolve_value(spec.source, values)
    email: str | None = None
    if person_id is not None and str(person_id).strip():
        pid = str(person_id).strip()
        email = spec.emails.get(pid) or (pid if "@" in pid else None)
        if email is None and spec.from_persons:
            person = ctx.persons.get(pid)
            raw = person.get("Email") if person else None
            email = str(raw) if raw else None
        if email is None:
            warnings.append(
                (r.Reason.of(r.NO_EMAIL, pid), f"no email known for IFS person {pid!r}; using the fallback assignee")
            )
    if email is None:
        email = spec.fallback_email
    return email.strip().lower() if email else None


def build_issue_fields(
    draft: IssueDraft,
    *,
    field_ids: Mapping[str, FieldTarget],
    account_id: str | None,
    to_adf: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """The Jira ``fields`` object for create and edit."""
    fields: dict[str, Any] = {
        "project": {"key": draft.project},
        "issuetype": {"name": draft.issue_type},
        "summary": draft.summary,
        "labels": list(draft.labels),
    }
    if draft.description:
        fields["description"] = to_adf(draft.description)
    if draft.priority:
        fields["priority"] = {"name": draft.priority}
    if account_id:
        fields["assignee"] = {"accountId": account_id}
    for name, value in draft.custom_fields.items():
        info = field_ids.get(name)
        if info is None:
            raise MappingError(f"Jira field {name!r} is not known", field=name, reason=r.UNKNOWN_FIELD, value=name)
        if info.kind == "select":
            fields[info.id] = {"value": value}
        elif info.kind == "textarea":
            fields[info.id] = to_adf(value)
        elif info.kind == "number":
            try:
                fields[info.id] = float(value)
            except ValueError:
                raise MappingError(
                    f"{value!r} is not a number for Jira field {name!r}",
                    field=name,
                    reason=r.NOT_A_NUMBER,
                    value=value,
                ) from None
        else:
            fields[info.id] = value
    return fields


@dataclass(frozen=True)
class IfsUpdate:
    """What to write into IFS for one Jira status."""

    changes: Mapping[str, Any]
    action: str | None
    status: str


def map_status(
    writeback: WritebackMapping, *, status: str, category: str | None, jira_key: str | None
) -> IfsUpdate | None:
    """The IFS write for a Jira status, or None when this status is not written back."""
    rule = writeback.statuses.get(status)
    if rule is None and category:
        rule = writeback.categories.get(category)
    if rule is None and not writeback.write_unmapped:
        return None
    value = rule.value if rule and rule.value is not None else status
    changes: dict[str, Any] = {}
    if writeback.status_field:
        changes[writeback.status_field] = value
    if writeback.key_field and jira_key:
        changes[writeback.key_field] = jira_key
    action = rule.action if rule else None
    if not changes and action is None:
        return None
    return IfsUpdate(changes=changes, action=action, status=status)
