"""Why a record failed or was warned about, as a stable reason code plus the value that varies.

Summaries group by the code (one line per cause however many records) and list the values with their counts
("no project mapped: PRJ-1005 x120, PRJ-1007 x40"); metrics label by the code alone, so label cardinality stays
bounded. The code is stored with the record (``records.reason``, ``records.reason_value``), never parsed back out of
the free-text message. ``fix_for`` says what to do about each code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    ConnectorError,
    MalformedResponse,
    MappingError,
    NotFound,
    RateLimited,
    Rejected,
    StaleMetadata,
    Unavailable,
)

if TYPE_CHECKING:  # the config imports the template module, which imports this one
    from ml_connector.config.models import FlowConfig, IssueMapping, ValueMap

# Mapping errors (raised with the code by mapping/issue.py)
UNMAPPED_PROJECT = "unmapped_project"  # value: the IFS value no project map entry covers
UNMAPPED_PRIORITY = "unmapped_priority"
UNMAPPED_OPTION = "unmapped_option"  # value: "<custom field>=<IFS value>"
UNKNOWN_PROJECT = "unknown_project"  # value: the Jira project key the map gave
UNKNOWN_PRIORITY = "unknown_priority"
OPTION_NOT_ALLOWED = "option_not_allowed"  # value: "<custom field>=<value>"
UNKNOWN_FIELD = "unknown_field"  # value: the custom field name
NOT_A_NUMBER = "not_a_number"  # value: "<custom field>=<value>"
BLANK_KEY = "blank_key"
EMPTY_SUMMARY = "empty_summary"
SUMMARY_TOO_LONG = "summary_too_long"
TEMPLATE_ERROR = "template_error"
TRANSITION_FIELDS = "transition_fields"  # value: the fields a Jira transition screen requires
MAPPING_OTHER = "mapping_other"
SOURCE_GONE = "source_gone"  # replayed, but the record is no longer in IFS (or outside the flow's filter)
# Errors from the far sides (derived from the error class and system)
JIRA_REJECTED = "jira_rejected"  # value: the fields Jira named, if any
IFS_REJECTED = "ifs_rejected"
NOT_FOUND = "not_found"
PERMISSION_DENIED = "permission_denied"  # value: the system
UNAVAILABLE = "unavailable"  # value: the system
MALFORMED_RESPONSE = "malformed_response"
CONFLICT = "conflict"
RATE_LIMITED = "rate_limited"
STALE_METADATA = "stale_metadata"  # value: the fields Jira named
INTERNAL = "internal_error"
OTHER = "other"
# Warnings: the record synced, but not quite as mapped
USER_NOT_FOUND = "user_not_found"  # value: the email with no Jira user
NO_EMAIL = "no_email"  # value: the IFS person id
CONTROL_CHARACTERS = "control_characters"

# Mapping failures that Jira metadata decided: read again, it may say otherwise (engine/outbound.py).
METADATA_REASONS = frozenset({UNKNOWN_PROJECT, UNKNOWN_PRIORITY, OPTION_NOT_ALLOWED, UNKNOWN_FIELD})
_PER_FIELD = frozenset({UNMAPPED_OPTION, OPTION_NOT_ALLOWED, NOT_A_NUMBER})  # values are "<custom field>=<value>"
_VALUE_MAX = 300  # the reason_value column's width


@dataclass(frozen=True, order=True)
class Reason:
    """A stable ``code`` and the ``value`` that varies within it (None when nothing does)."""

    code: str
    value: str | None = None

    @classmethod
    def of(cls, code: str, value: object | None = None) -> Reason:
        text = None if value is None else " ".join(str(value).split())[:_VALUE_MAX]
        return cls(code, text or None)


def field_value(field: str, value: object) -> str:
    """The value of codes that concern one custom field: ``<field>=<value>`` (see ``split_field_value``)."""
    return f"{field}={value}"


def split_field_value(value: str | None) -> tuple[str, str]:
    field, _, rest = (value or "").partition("=")
    return field, rest


def reason_of(error: BaseException) -> Reason:
    """The reason for a record's failure: the code the raise site gave, else one derived from the error's class."""
    if isinstance(error, MappingError):
        code = error.reason or MAPPING_OTHER
        per_field = code in _PER_FIELD and error.field is not None and error.value is not None
        return Reason.of(code, field_value(str(error.field), error.value) if per_field else error.value)
    if not isinstance(error, ConnectorError):
        return Reason(INTERNAL)
    system = (error.system or "").split("-")[0] or None  # "ifs-iam" is IFS
    if isinstance(error, RateLimited):
        return Reason.of(RATE_LIMITED, system)
    if isinstance(error, StaleMetadata):
        return Reason(STALE_METADATA)
    if isinstance(error, MalformedResponse):
        return Reason.of(MALFORMED_RESPONSE, system)
    if isinstance(error, Unavailable):
        return Reason.of(UNAVAILABLE, system)
    if isinstance(error, AuthError):
        return Reason.of(PERMISSION_DENIED, system)
    if isinstance(error, ConcurrencyConflict):
        return Reason.of(CONFLICT, system)
    if isinstance(error, NotFound):
        return Reason.of(NOT_FOUND, system)
    if isinstance(error, Rejected):
        fields = sorted(str(k) for k in (error.details.get("errors") or {}))
        code = IFS_REJECTED if system == "ifs" else JIRA_REJECTED
        return Reason.of(code, ", ".join(fields) or error.status)
    return Reason(OTHER)


LABELS = {
    UNMAPPED_PROJECT: "no project mapped",
    UNMAPPED_PRIORITY: "no priority mapped",
    UNMAPPED_OPTION: "no custom field value mapped",
    UNKNOWN_PROJECT: "Jira project missing or not visible",
    UNKNOWN_PRIORITY: "priority not in Jira",
    OPTION_NOT_ALLOWED: "not an option of the Jira field",
    UNKNOWN_FIELD: "Jira field not known",
    NOT_A_NUMBER: "not a number",
    BLANK_KEY: "blank key",
    EMPTY_SUMMARY: "empty summary",
    SUMMARY_TOO_LONG: "summary too long",
    TEMPLATE_ERROR: "template cannot render",
    TRANSITION_FIELDS: "transition needs fields",
    MAPPING_OTHER: "mapping failed",
    SOURCE_GONE: "no longer in IFS",
    JIRA_REJECTED: "Jira refused the issue",
    IFS_REJECTED: "IFS refused the write-back",
    NOT_FOUND: "not found",
    PERMISSION_DENIED: "permission denied",
    UNAVAILABLE: "unavailable",
    MALFORMED_RESPONSE: "malformed response",
    CONFLICT: "changed meanwhile",
    RATE_LIMITED: "rate limited",
    STALE_METADATA: "Jira metadata changed",
    INTERNAL: "internal error",
    OTHER: "other",
    USER_NOT_FOUND: "no Jira user (left unassigned or given the fallback)",
    NO_EMAIL: "no email for the IFS person (fallback assignee used)",
    CONTROL_CHARACTERS: "control characters removed",
}


def label(code: str) -> str:
    """The words for a code in summaries, ``status`` and the dashboard."""
    return LABELS.get(code, code.replace("_", " "))


# -- what to do about each code: the config path to change, or the command to run next ---------------------------

CHECK = "`ml-connector check`"
_FIX_VALUES = 5  # values a fix names; the summary line lists the counts
REPLAY = "then `ml-connector replay --failed`"


def flow_path(flows: Sequence[str], flow: str) -> str:
    """The YAML path of a flow among the configured ``flows`` (names, in order): ``flows[1]``, as config validation
    errors name it. Every message naming a flow's config key builds it from this."""
    return f"flows[{flows.index(flow)}]" if flow in flows else f"flows[] (name: {flow})"


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "the values shown"


def _from(spec: ValueMap | None, values: Sequence[str]) -> str:
    """Which key of a value map gave the Jira ``values``: ``map``, ``default``, or both when it cannot tell."""
    if spec is not None and values:
        in_map = any(v in spec.map.values() for v in values)
        is_default = spec.default in values
        if in_map != is_default:
            return "map" if in_map else "default"
    return "map (or default)"


def _template_path(mapping: IssueMapping | None, source: str | None) -> str | None:
    """The path below ``mapping`` of the template with text ``source``, if the mapping has it."""
    for where, text, _ in mapping.templates() if mapping is not None else ():
        if text == source:
            return where
    return None


def _custom_fix(code: str, field: str, values: Sequence[str], at: str, mapping: IssueMapping | None) -> str:
    """Option and number errors of one custom field: a value map's entries to correct, or its template to change."""
    path = f"{at}.mapping.custom_fields.{field}"
    shown = _quoted([rest for f, rest in map(split_field_value, values) if f == field])
    spec = mapping.custom_fields.get(field) if mapping is not None else None
    wanted = f"one of its options ({CHECK} lists them)" if code == OPTION_NOT_ALLOWED else "numbers"
    if isinstance(spec, str):
        return f"change the template {path}: it gives {shown}, and Jira field {field!r} takes {wanted}"
    return f"correct {shown} in {path}.map (or its default): Jira field {field!r} takes {wanted}"


def _mapping_fix(code: str, values: Sequence[str], at: str, mapping: IssueMapping | None) -> str | None:
    field = split_field_value(values[0])[0] if values else "<field>"
    if code in (OPTION_NOT_ALLOWED, NOT_A_NUMBER):
        return _custom_fix(code, field, values, at, mapping)
    options = _quoted([split_field_value(v)[1] for v in values if split_field_value(v)[0] == field])
    value = values[0] if values else None
    project = mapping.project if mapping is not None else None
    priority = mapping.priority if mapping is not None else None
    template = _template_path(mapping, value)
    fixes = {
        UNMAPPED_PROJECT: (
            f"add {_quoted(values)} under {at}.mapping.project.map (or set {at}.mapping.project.default)"
        ),
        UNMAPPED_PRIORITY: (
            f"add {_quoted(values)} under {at}.mapping.priority.map (or set {at}.mapping.priority.default)"
        ),
        UNMAPPED_OPTION: (
            f"add {options} under {at}.mapping.custom_fields.{field}.map "
            f"(or set {at}.mapping.custom_fields.{field}.default)"
        ),
        UNKNOWN_PROJECT: (
            f"correct the Jira project {_quoted(values)} in {at}.mapping.project.{_from(project, values)}, or let "
            f"the integration user browse that project ({CHECK} lists the projects it sees)"
        ),
        UNKNOWN_PRIORITY: (
            f"correct the Jira priority {_quoted(values)} in {at}.mapping.priority.{_from(priority, values)} "
            f"({CHECK} lists the priorities Jira has)"
        ),
        UNKNOWN_FIELD: f"{at}.mapping.custom_fields names field {value!r}, which Jira does not know: run {CHECK}",
        BLANK_KEY: f"fill {at}.key in those IFS records, or narrow {at}.filter to leave them out",
        EMPTY_SUMMARY: f"change the template {at}.mapping.summary: it renders empty for these records",
        SUMMARY_TOO_LONG: (
            f"change the template {at}.mapping.summary to stay within 255 characters "
            f"(e.g. {{{{ Description | truncate(200) }}}})"
        ),
        TEMPLATE_ERROR: (
            f"change the template {at}.mapping.{template} ({CHECK} names the field it lacks)"
            if template
            else f"fix the template {value!r} under {at}.mapping ({CHECK} names the field it lacks)"
        ),
        TRANSITION_FIELDS: (
            f"the Jira workflow's transition screen requires {value}: take them off the screen, or change "
            f"{at}.writeback.statuses"
        ),
        MAPPING_OTHER: f"see the message; the mapping is under {at}.mapping",
    }
    return fixes.get(code)


def _far_side_fix(code: str, values: Sequence[str], at: str) -> str | None:
    value = ", ".join(values) or None
    fixes = {
        JIRA_REJECTED: f"Jira refused the issue ({value or 'see the message'}): run {CHECK}, fix {at}.mapping",
        IFS_REJECTED: f"IFS refused the write-back: check {at}.writeback (status_field, key_field, statuses)",
        NOT_FOUND: "the linked item is gone or hidden; `ml-connector audit KEY` shows the record's trail",
        PERMISSION_DENIED: f"give the {value or ''} integration user the missing permission, {REPLAY}",
        UNAVAILABLE: f"{value or 'the far side'} was unavailable: retried on later runs; {CHECK} if it persists",
        MALFORMED_RESPONSE: f"{value or 'the far side'} answered garbage (a proxy page?): {CHECK}, {REPLAY}",
        CONFLICT: "changed in IFS meanwhile: retried on later runs",
        RATE_LIMITED: "rate limited: retried on later runs (sync.bulk_concurrency lowers the pressure)",
        STALE_METADATA: "Jira's fields, options or priorities changed since they were read: read again, retried",
        SOURCE_GONE: f"no longer in IFS or outside {at}.filter: nothing to do unless that is wrong",
        INTERNAL: "a bug: the crash report or log has the details; please report it",
    }
    return fixes.get(code)


def _warning_fix(code: str, values: Sequence[str], at: str) -> str | None:
    fixes = {
        USER_NOT_FOUND: (
            f"give {', '.join(values) or 'those people'} a Jira account, map them to other emails under "
            f"{at}.mapping.assignee.emails, or set {at}.mapping.assignee.fallback_email"
        ),
        NO_EMAIL: f"add {_quoted(values)} under {at}.mapping.assignee.emails (or fill their emails in IFS)",
        CONTROL_CHARACTERS: "nothing to do: removed before sending",
    }
    return fixes.get(code)


def fix_for(flows: Sequence[FlowConfig], flow: str, code: str, values: Iterable[str | None] = ()) -> str:
    """What to do about failed or warned records of ``flow`` (one of the configured ``flows``) with reason ``code``
    and the varying ``values`` (the most frequent first; a few are enough): the config path to change, or the
    command to run next. The one table for the real run's summary, the dry run, ``check --sample``, ``status`` and
    the dashboard; the flow's mapping tells a map entry from a default, and a value map from a template."""
    names = [f.name for f in flows]
    at = flow_path(names, flow)
    mapping = flows[names.index(flow)].mapping if flow in names else None
    shown = [v for v in values if v is not None][:_FIX_VALUES]
    fix = _mapping_fix(code, shown, at, mapping) or _far_side_fix(code, shown, at) or _warning_fix(code, shown, at)
    return fix or f"see `ml-connector records --state failed --flow {flow}`; {REPLAY} once fixed"
