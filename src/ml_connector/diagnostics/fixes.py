"""Which config key to fix for a credential or connection error: one mapping for `check` and for `sync`/`run`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ml_connector import reasons as r
from ml_connector.config.models import ConnectorConfig
from ml_connector.errors import AuthError, ConnectorError, TransientError, Unavailable

API_TOKEN_URL = "https://id.atlassian.com/manage-profile/security/api-tokens"


def ifs_credentials_fix(config: ConnectorConfig) -> str:
    cfg = config.ifs
    return (
        f"check ifs.client_id ({cfg.client_id}) and ifs.client_secret (IFS_CLIENT_SECRET) for realm "
        f"{cfg.realm}: the IAM client must exist, be enabled and have a service account"
    )


def ifs_connection_fix(config: ConnectorConfig) -> str:
    return f"check ifs.url ({config.ifs.base_url}) and ifs.realm ({config.ifs.realm})"


def jira_credentials_fix(config: ConnectorConfig) -> str:
    if config.jira.auth.kind == "basic":
        return (
            f"check jira.auth.email and jira.auth.api_token (JIRA_API_TOKEN; create one at {API_TOKEN_URL}) "
            "for that account"
        )
    return (
        "check jira.auth.client_id / jira.auth.client_secret; if the refresh token was revoked, "
        "run the OAuth consent again"
    )


def jira_connection_fix(config: ConnectorConfig) -> str:
    return f"check jira.url ({config.jira.url})"


def config_fix(config: ConnectorConfig, error: BaseException) -> str | None:
    """The fix naming the config key for refused credentials or a host never reached (DNS, refused, TLS), or None
    when the error is not one a config key explains."""
    if not isinstance(error, ConnectorError):
        return None
    system = error.system or ""
    unreachable = isinstance(error, Unavailable) and error.not_sent
    if system.startswith("ifs"):
        if isinstance(error, AuthError):
            return ifs_credentials_fix(config)
        token_endpoint_wrong = system == "ifs-iam" and not isinstance(error, TransientError)  # e.g. 404: wrong realm
        return ifs_connection_fix(config) if unreachable or token_endpoint_wrong else None
    if system == "jira":
        if isinstance(error, AuthError):
            return jira_credentials_fix(config)
        return jira_connection_fix(config) if unreachable else None
    return None


# -- failed and warned records: what to do about each reason code (ml_connector.reasons) --------------------------

CHECK = "`ml-connector check`"
_FIX_VALUES = 5  # values a fix names; the summary line lists the counts
REPLAY = "then `ml-connector replay --failed`"


def flow_path(config: ConnectorConfig, flow: str) -> str:
    """The YAML path of a flow, as config errors name it: ``flows[0]``."""
    for index, candidate in enumerate(config.flows):
        if candidate.name == flow:
            return f"flows[{index}]"
    return f"flows[] (name: {flow})"


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "the values shown"


def _mapping_fix(code: str, values: Sequence[str], at: str) -> str | None:
    field = r.split_field_value(values[0])[0] if values else "<field>"
    options = _quoted([r.split_field_value(v)[1] for v in values if r.split_field_value(v)[0] == field])
    value = values[0] if values else None
    fixes = {
        r.UNMAPPED_PROJECT: (
            f"add {_quoted(values)} under {at}.mapping.project.map (or set {at}.mapping.project.default)"
        ),
        r.UNMAPPED_PRIORITY: (
            f"add {_quoted(values)} under {at}.mapping.priority.map (or set {at}.mapping.priority.default)"
        ),
        r.UNMAPPED_OPTION: f"add {options} under {at}.mapping.custom_fields.{field}.map (or set its default)",
        r.UNKNOWN_PROJECT: (
            f"{at}.mapping.project.map names Jira project {_quoted(values)}: correct the key, or let the integration "
            f"user browse that project ({CHECK} lists the projects it sees)"
        ),
        r.UNKNOWN_PRIORITY: f"map to a priority Jira has in {at}.mapping.priority.map ({CHECK} lists them)",
        r.OPTION_NOT_ALLOWED: (
            f"map {options} to options of Jira field {field!r} in {at}.mapping.custom_fields.{field} "
            f"({CHECK} lists them)"
        ),
        r.UNKNOWN_FIELD: f"{at}.mapping.custom_fields names field {value!r}, which Jira does not know: run {CHECK}",
        r.NOT_A_NUMBER: f"{at}.mapping.custom_fields.{field} must give a number for that Jira field",
        r.BLANK_KEY: f"fill {at}.key in those IFS records, or narrow {at}.filter to leave them out",
        r.EMPTY_SUMMARY: f"{at}.mapping.summary renders empty for these records: give it a fallback text",
        r.SUMMARY_TOO_LONG: f"shorten {at}.mapping.summary (e.g. {{{{ Description | truncate(200) }}}}), {REPLAY}",
        r.TEMPLATE_ERROR: f"fix the template {value!r} under {at}.mapping ({CHECK} names the field it lacks)",
        r.TRANSITION_FIELDS: (
            f"the Jira workflow's transition screen requires {value}: take them off the screen, or change "
            f"{at}.writeback.statuses"
        ),
        r.MAPPING_OTHER: f"see the message; the mapping is under {at}.mapping",
    }
    return fixes.get(code)


def _far_side_fix(code: str, values: Sequence[str], at: str) -> str | None:
    value = ", ".join(values) or None
    fixes = {
        r.JIRA_REJECTED: f"Jira refused the issue ({value or 'see the message'}): run {CHECK}, fix {at}.mapping",
        r.IFS_REJECTED: f"IFS refused the write-back: check {at}.writeback (status_field, key_field, statuses)",
        r.NOT_FOUND: "the linked item is gone or hidden; `ml-connector audit KEY` shows the record's trail",
        r.PERMISSION_DENIED: f"give the {value or ''} integration user the missing permission, {REPLAY}",
        r.UNAVAILABLE: f"{value or 'the far side'} was unavailable: retried on later runs; {CHECK} if it persists",
        r.MALFORMED_RESPONSE: f"{value or 'the far side'} answered garbage (a proxy page?): {CHECK}, {REPLAY}",
        r.CONFLICT: "changed in IFS meanwhile: retried on later runs",
        r.RATE_LIMITED: "rate limited: retried on later runs (sync.bulk_concurrency lowers the pressure)",
        r.SOURCE_GONE: f"no longer in IFS or outside {at}.filter: nothing to do unless that is wrong",
        r.INTERNAL: "a bug: the crash report or log has the details; please report it",
    }
    return fixes.get(code)


def _warning_fix(code: str, values: Sequence[str], at: str) -> str | None:
    fixes = {
        r.USER_NOT_FOUND: (
            f"give {', '.join(values) or 'those people'} a Jira account, map them to other emails under "
            f"{at}.mapping.assignee.emails, or set {at}.mapping.assignee.fallback_email"
        ),
        r.NO_EMAIL: f"add {_quoted(values)} under {at}.mapping.assignee.emails (or fill their emails in IFS)",
        r.CONTROL_CHARACTERS: "nothing to do: removed before sending",
    }
    return fixes.get(code)


def reason_fix(config: ConnectorConfig, flow: str, code: str, values: Iterable[str | None] = ()) -> str:
    """What to do about failed or warned records of ``flow`` with reason ``code`` and the varying ``values`` (the
    most frequent first; a few are enough): the config path to change, or the command to run next."""
    at = flow_path(config, flow)
    shown = [v for v in values if v is not None][:_FIX_VALUES]
    for lookup in (_mapping_fix, _far_side_fix, _warning_fix):
        fix = lookup(code, shown, at)
        if fix is not None:
            return fix
    return f"see `ml-connector records --state failed --flow {flow}`; {REPLAY} once fixed"
