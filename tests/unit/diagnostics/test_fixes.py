"""One mapping from an error to the config key that fixes it, used by `check` and by `sync`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector import reasons
from ml_connector.config.models import ConnectorConfig, load_config
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
        (Unavailable("could not connect (ConnectError: certificate verify failed)", system="jira", not_sent=True),
         "jira.url"),
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
        (reasons.UNKNOWN_PROJECT, ["NOPE"], "flows[0].mapping.project.map names Jira project 'NOPE'"),
        (reasons.SUMMARY_TOO_LONG, [], "shorten flows[0].mapping.summary"),
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
