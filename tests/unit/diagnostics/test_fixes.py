"""One mapping from an error to the config key that fixes it, used by `check` and by `sync`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector.config.models import ConnectorConfig, load_config
from ml_connector.diagnostics.fixes import config_fix
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
