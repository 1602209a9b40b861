"""One mapping from an error to the config key that fixes it, used by `check` and by `sync`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector import reasons
from ml_connector.config.models import ConnectorConfig, FlowConfig, load_config
from ml_connector.diagnostics.fixes import config_fix, reason_fix
from ml_connector.errors import AuthError, ConnectorError, NotFound, Unavailable

EXAMPLE = Path(__file__).parents[3] / "src" / "ml_connector" / "config" / "templates" / "example.yaml"


@pytest.fixture
def config() -> ConnectorConfig:
    return load_config(EXAMPLE, env={})


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (AuthError("401 invalid_client", system="ifs-iam"), "ifs.client_secret"),
        (AuthError("401", system="ifs"), "ifs.client_secret"),
        (Unavailable("could not connect", system="ifs", not_sent=True), "ifs.url"),
        (NotFound("no realm", system="ifs-iam"), "ifs.realm"),
        (AuthError("401", system="jira"), "jira.auth.api_token"),
        (
            Unavailable("could not connect (ConnectError: certificate verify failed)", system="jira", not_sent=True),
            "jira.url",
        ),
    ],
)
def test_names_the_key(config: ConnectorConfig, error: ConnectorError, key: str) -> None:
    assert key in (config_fix(config, error) or "")


@pytest.mark.parametrize(
    "error",
    [
        Unavailable("503", system="jira"),  # the host answered: not a config problem
        Unavailable("503", system="ifs-iam"),
        NotFound("issue gone", system="jira"),
        KeyError("bug"),
    ],
)
def test_stays_silent_when_no_key_explains_it(config: ConnectorConfig, error: BaseException) -> None:
    assert config_fix(config, error) is None


# -- reason_fix: what to do about each failure or warning reason ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "values", "expected"),
    [
        (
            reasons.UNMAPPED_PROJECT,
            ["PRJ-1005", "PRJ-1007"],
            "add 'PRJ-1005', 'PRJ-1007' under flows[0].mapping.project.map (or set flows[0].mapping.project.default)",
        ),
        (reasons.UNMAPPED_PRIORITY, ["T9"], "add 'T9' under flows[0].mapping.priority.map"),
        (
            reasons.UNMAPPED_OPTION,
            ["Supplier tier=T9", "Supplier tier=T8", "Region=X"],
            "add 'T9', 'T8' under flows[0].mapping.custom_fields.Supplier tier.map",
        ),
        (reasons.UNKNOWN_PROJECT, ["NOPE"], "correct the Jira project 'NOPE' in flows[0].mapping.project.map (or"),
        (reasons.SUMMARY_TOO_LONG, [], "change the template flows[0].mapping.summary to stay within 255"),
        (reasons.USER_NOT_FOUND, ["a@example.com"], "flows[0].mapping.assignee.fallback_email"),
        (reasons.NO_EMAIL, ["P1"], "add 'P1' under flows[0].mapping.assignee.emails"),
        (reasons.UNAVAILABLE, ["jira"], "`ml-connector check`"),
        (reasons.PERMISSION_DENIED, ["jira"], "`ml-connector replay --failed`"),
        ("a_code_from_the_future", [], "`ml-connector records --state failed --flow purchase_orders`"),
    ],
)
def test_reason_fix_names_the_config_path_or_the_next_command(
    config: ConnectorConfig, code: str, values: list[str], expected: str
) -> None:
    assert expected in reason_fix(config, "purchase_orders", code, values)


def test_reason_fix_finds_the_flow_by_name_and_names_at_most_five_values(config: ConnectorConfig) -> None:
    second = config.flows[1].name
    fix = reason_fix(config, second, reasons.UNMAPPED_PROJECT, [f"V{i}" for i in range(9)] + [None])
    assert "flows[1].mapping.project.map" in fix
    assert "'V4'" in fix and "'V5'" not in fix


def test_every_reason_code_has_its_own_fix_and_label(config: ConnectorConfig) -> None:
    fallback = reason_fix(config, "purchase_orders", "a_code_from_the_future")
    for code in set(reasons.LABELS) - {reasons.OTHER}:  # "other" is the fallback itself
        assert reason_fix(config, "purchase_orders", code, ["x=y"]) != fallback, code
        assert reasons.label(code) and "_" not in reasons.label(code), code


def test_reason_fix_tells_a_map_entry_from_the_default_and_a_value_map_from_a_template() -> None:
    flow = {
        "name": "purchase_orders",
        "preset": "purchase_orders",
        "mapping": {
            "project": {"source": "ProjectId", "map": {"PRJ-1": "CAPX"}, "default": "PROK"},
            "issue_type": "Task",
            "summary": "PO {{ OrderNo }}",
            "priority": {"source": "Tier", "map": {"T1": "Hihg"}, "default": "Mediun"},
            "custom_fields": {"Cost Center:select": {"source": "CodeB", "map": {}}, "Ref": "{{ OrderNo }}"},
        },
    }
    config = load_config(EXAMPLE, env={})
    config = config.model_copy(update={"flows": [config.flows[1], FlowConfig.model_validate(flow)]})
    at = "flows[1].mapping"

    def fix(code: str, *values: str) -> str:
        return reason_fix(config, "purchase_orders", code, values)

    assert fix(reasons.UNKNOWN_PROJECT, "CAPX").startswith(f"correct the Jira project 'CAPX' in {at}.project.map,")
    assert fix(reasons.UNKNOWN_PROJECT, "PROK").startswith(f"correct the Jira project 'PROK' in {at}.project.default,")
    assert fix(reasons.UNKNOWN_PRIORITY, "Hihg").startswith(f"correct the Jira priority 'Hihg' in {at}.priority.map ")
    assert fix(reasons.UNKNOWN_PRIORITY, "Mediun").startswith(
        f"correct the Jira priority 'Mediun' in {at}.priority.default "
    )
    cost = f"{at}.custom_fields.Cost Center:select"
    assert fix(reasons.UNMAPPED_OPTION, "Cost Center:select=CC9") == (
        f"add 'CC9' under {cost}.map (or set {cost}.default)"
    )
    assert fix(reasons.OPTION_NOT_ALLOWED, "Cost Center:select=CC 9").startswith(f"correct 'CC 9' in {cost}.map")
    assert fix(reasons.OPTION_NOT_ALLOWED, "Ref=x 1") == (
        f"change the template {at}.custom_fields.Ref: it gives 'x 1', and Jira field 'Ref' takes one of its options "
        "(`ml-connector check` lists them)"
    )
    assert fix(reasons.NOT_A_NUMBER, "Ref=twelve") == (
        f"change the template {at}.custom_fields.Ref: it gives 'twelve', and Jira field 'Ref' takes numbers"
    )
    assert fix(reasons.TEMPLATE_ERROR, "PO {{ OrderNo }}").startswith(f"change the template {at}.summary (")
    assert fix(reasons.TEMPLATE_ERROR, "{{ gone }}").startswith(f"fix the template '{{{{ gone }}}}' under {at} (")
    assert fix(reasons.EMPTY_SUMMARY).startswith(f"change the template {at}.summary: it renders empty")
