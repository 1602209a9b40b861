"""No usable default webhook secret, and the dashboard's token rules (issue 15)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ml_connector.cli.app import app
from ml_connector.cli.commands import with_webhook_secret
from ml_connector.config.connections import SIMULATOR_SECRETS
from ml_connector.config.models import load_config
from ml_connector.errors import ConfigError
from ml_connector.sim.jira.options import JiraSimOptions

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"
STRONG = "k7Qw9zX2mN4pL8rT1vB6yH3jF5dS0aGc-strong"
REAL_JIRA = "https://acme.atlassian.net"



def _config(tmp_path: Path, *, jira: dict[str, object], web: dict[str, object] | None = None) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["jira"].update(jira)
    if web is not None:
        data["web"] = web
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_simulator_default_is_known() -> None:
    # The simulator's own default must be in the refused set, or the refusal silently stops covering it.
    options = JiraSimOptions()
    assert {options.webhook_secret, options.api_token} <= SIMULATOR_SECRETS


def test_the_shipped_template_carries_no_webhook_secret(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, jira={}), env={})
    assert config.jira.webhook_secret is None
    assert "sim-webhook-secret" not in EXAMPLE.read_text()


@pytest.mark.parametrize("url", [REAL_JIRA, "http://127.0.0.1:8702"])
@pytest.mark.parametrize("secret", [*sorted(SIMULATOR_SECRETS), "short-secret", "x" * 31])
def test_a_weak_or_published_secret_is_refused_without_the_simulator_marker(
    tmp_path: Path, url: str, secret: str
) -> None:
    path = _config(tmp_path, jira={"url": url, "webhook_secret": secret})
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert err.value.path == "jira.webhook_secret"
    assert "token_urlsafe" in str(err.value) and "JIRA_WEBHOOK_SECRET" in str(err.value)  # the fix
    assert secret not in str(err.value)


def test_the_simulator_marker_needs_a_loopback_jira(tmp_path: Path) -> None:
    path = _config(tmp_path, jira={"url": REAL_JIRA, "simulator": True, "webhook_secret": "sim-webhook-secret"})
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert err.value.path == "jira.simulator"
    # A name that resolves to loopback is not enough: only literal loopback addresses and localhost count.
    path = _config(tmp_path, jira={"url": "http://localtest.me:8702", "simulator": True})
    with pytest.raises(ConfigError):
        load_config(path, env={})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8702", "http://localhost:8702", "http://[::1]:8702"])
def test_the_simulator_secret_is_accepted_on_a_marked_loopback_jira(tmp_path: Path, url: str) -> None:
    path = _config(tmp_path, jira={"url": url, "simulator": True, "webhook_secret": "sim-webhook-secret"})
    assert load_config(path, env={}).jira.simulator is True


def test_a_strong_secret_is_accepted_anywhere(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, jira={"url": REAL_JIRA, "webhook_secret": STRONG}), env={})
    assert config.jira.webhook_secret is not None


def test_the_environment_cannot_smuggle_the_default_back(tmp_path: Path) -> None:
    text = with_webhook_secret(EXAMPLE.read_text(), STRONG)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert load_config(path, env={}).jira.webhook_secret is not None
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"JIRA_WEBHOOK_SECRET": "sim-webhook-secret"})
    assert err.value.path == "jira.webhook_secret"


def test_init_writes_a_random_secret_and_says_where_it_goes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for path in (first, second):
        result = CliRunner().invoke(app, ["init", str(path)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "webhook" in output.lower() and "/webhooks/jira" in output and "Secret field" in output
    secrets_written = [load_config(p, env={}).jira.webhook_secret for p in (first, second)]
    values = [s.get_secret_value() for s in secrets_written if s is not None]
    assert len(values) == 2 and values[0] != values[1]
    assert all(len(v) >= 32 for v in values)
    assert values[0] not in result.output  # printed nowhere: it is in the file only
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o600


@pytest.mark.parametrize(
    ("web", "path_part"),
    [
        ({"admin_token": "short"}, "web.admin_token"),
        ({"read_token": "read-token-0123456789"}, "web"),
        ({"admin_token": "same-token-0123456789", "read_token": "same-token-0123456789"}, "web"),
    ],
)
def test_dashboard_token_rules(tmp_path: Path, web: dict[str, object], path_part: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, jira={}, web=web), env={})
    assert err.value.path == path_part
