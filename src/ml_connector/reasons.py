"""Why a record failed or was warned about, as a stable reason code plus the value that varies.

Summaries group by the code (one line per cause however many records) and list the values with their counts
("no project mapped: PRJ-1005 x120, PRJ-1007 x40"); metrics label by the code alone, so label cardinality stays
bounded. The code is stored with the record (``records.reason``, ``records.reason_value``), never parsed back out of
the free-text message. ``diagnostics.fixes.reason_fix`` says what to do about each code.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    ConnectorError,
    MalformedResponse,
    MappingError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)

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
INTERNAL = "internal_error"
OTHER = "other"
# Warnings: the record synced, but not quite as mapped
USER_NOT_FOUND = "user_not_found"  # value: the email with no Jira user
NO_EMAIL = "no_email"  # value: the IFS person id
CONTROL_CHARACTERS = "control_characters"

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
        return Reason.of(error.reason or MAPPING_OTHER, error.value)
    if not isinstance(error, ConnectorError):
        return Reason(INTERNAL)
    system = (error.system or "").split("-")[0] or None  # "ifs-iam" is IFS
    if isinstance(error, RateLimited):
        return Reason.of(RATE_LIMITED, system)
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
    INTERNAL: "internal error",
    OTHER: "other",
    USER_NOT_FOUND: "no Jira user (left unassigned or given the fallback)",
    NO_EMAIL: "no email for the IFS person (fallback assignee used)",
    CONTROL_CHARACTERS: "control characters removed",
}


def label(code: str) -> str:
    """The words for a code in summaries, ``status`` and the dashboard."""
    return LABELS.get(code, code.replace("_", " "))
