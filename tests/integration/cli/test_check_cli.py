"""``ml-connector check`` against the simulators: passes with the example config, fails with a fix otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from ml_connector.cli.app import ExitCode, _register_commands, app
from ml_connector.config.models import load_config
from ml_connector.engine.check import Checker
from ml_connector.errors import Unavailable
from ml_connector.jira import JiraClient, MemoryTokenStore
from ml_connector.runner import WebhookManager
from ml_connector.serve import ServerHandle
from ml_connector.store import Store

from ..jira.helpers import Sim, consent, oauth_connection
from ..runner.simenv import example_config, simulators, write_config

_register_commands()
SECRETS = ("sim-secret", "sim-api-token", "sim-webhook-secret", "wrong-Secret-4711")


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[ServerHandle, ServerHandle]]:
    with simulators(purchase_orders=5, work_orders=5, seed=7) as pair:
        yield pair


@pytest.fixture
def env(sims: tuple[ServerHandle, ServerHandle], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFS_URL", sims[0].url)
    monkeypatch.setenv("JIRA_URL", sims[1].url)
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "DEBUG")  # the most talkative logs must still hide secrets


def check(tmp_path: Path, data: dict[str, Any], *extra: str) -> tuple[int, str]:
    data.setdefault("store", {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"})
    path = write_config(tmp_path, data)
    result = CliRunner().invoke(app, ["check", "--config", str(path), *extra], catch_exceptions=False)
    output = " ".join(result.output.split())  # undo Rich's wrapping for substring checks
    for secret in SECRETS:
        assert secret not in result.output, f"secret {secret!r} printed"
    return result.exit_code, output


def failures(tmp_path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Run ``check --json`` and return the failed checks (each with system, name, detail, fix)."""
    data.setdefault("store", {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"})
    path = write_config(tmp_path, data)
    result = CliRunner().invoke(app, ["check", "--json", "--config", str(path)], catch_exceptions=False)
    for secret in SECRETS:
        assert secret not in result.output, f"secret {secret!r} printed"
    assert result.exit_code == ExitCode.ERROR, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert rows, result.output
    return [r for r in rows if r["status"] == "fail"]


def test_example_config_passes(env: None, tmp_path: Path) -> None:
    code, output = check(tmp_path, example_config())
    assert code == ExitCode.OK, output
    assert "all passed" in output
    assert "FAIL" not in output
    assert not (tmp_path / "state.sqlite").exists(), "check must not create or write the store (Basic auth)"


def test_wrong_client_secret(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFS_CLIENT_SECRET", "wrong-Secret-4711")
    code, output = check(tmp_path, example_config())
    assert code != ExitCode.OK
    assert "FAIL │ ifs │ IFS token" in output
    assert "ifs.client_secret" in output  # the fix names the setting, never its value
    assert "Jira authentication" in output  # Jira is still checked


def test_missing_field_in_select(env: None, tmp_path: Path) -> None:
    data = example_config()
    data["flows"][0]["select"] = [*data["flows"][0]["select"], "VendorName", "description"]
    [failed] = failures(tmp_path, data)
    assert failed["name"] == "PurchaseOrderHandling.svc/PurchaseOrderSet fields"
    assert failed["detail"] == "not in $metadata: VendorName, description (did you mean Description?)"
    assert "flows[0] (purchase_orders).select" in failed["fix"]


def test_ambiguous_custom_field(env: None, tmp_path: Path) -> None:
    data = example_config()
    fields = data["flows"][0]["mapping"]["custom_fields"]
    fields["Cost Center"] = fields.pop("Cost Center:text")
    [failed] = failures(tmp_path, data)
    assert failed["name"] == "purchase_orders: field 'Cost Center'"
    assert "ambiguous" in failed["detail"]
    assert "customfield_10051" in failed["detail"] and "customfield_10060" in failed["detail"]
    assert "customfield_10051 or customfield_10060" in failed["fix"]
    assert "'Cost Center:text'" in failed["fix"]  # the fix shows how to pick one


def test_unknown_project(env: None, tmp_path: Path) -> None:
    data = example_config()
    data["flows"][1]["mapping"]["project"]["default"] = "NOPE"
    [failed] = failures(tmp_path, data)
    assert failed["name"] == "project NOPE"
    assert "flows[1].mapping.project" in failed["fix"]


# -- the webhook receiver (issue 15) ----------------------------------------------------------------------------------

CLI = str(Path(sys.executable).parent / "ml-connector")
STRONG = "k7Qw9zX2mN4pL8rT1vB6yH3jF5dS0aGc-strong"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"JIRA_URL", "JIRA_WEBHOOK_SECRET"}}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["check", "run"])
def test_simulator_secret_on_a_real_jira_url_is_refused(tmp_path: Path, command: str) -> None:
    data = example_config()
    data["jira"].update(url="https://acme.atlassian.net", webhook_secret="sim-webhook-secret")
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    path = write_config(tmp_path, data)
    done = _cli(command, "--config", str(path))
    assert done.returncode == ExitCode.CONFIG, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "jira.webhook_secret" in message and "published simulator default" in message
    assert "sim-webhook-secret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state.sqlite").exists(), f"{command} must refuse before touching anything"
    # The simulator marker does not help on a real URL either.
    data["jira"]["simulator"] = True
    done = _cli(command, "--config", str(write_config(tmp_path, data)))
    assert done.returncode == ExitCode.CONFIG
    assert "jira.simulator" in " ".join(done.stderr.split())


def _receiver_rows(tmp_path: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    data.setdefault("store", {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"})
    path = write_config(tmp_path, data)
    result = CliRunner().invoke(app, ["check", "--json", "--config", str(path)], catch_exceptions=False)
    assert STRONG not in result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {r["name"]: r for r in rows if r["name"].startswith(("webhook", "Jira webhook"))}


def test_check_reports_a_disabled_receiver(env: None, tmp_path: Path) -> None:
    rows = _receiver_rows(tmp_path, example_config())
    assert rows["webhook receiver"]["status"] == "pass"
    assert "404" in rows["webhook receiver"]["detail"]
    assert "Jira webhook points here" not in rows


def test_check_reports_secret_strength_and_where_jira_delivers(
    env: None, sims: tuple[ServerHandle, ServerHandle], tmp_path: Path
) -> None:
    public = "https://connector-check.example.com"
    data = example_config()
    data["jira"]["webhook_secret"] = STRONG
    data["webhooks"] = {"enabled": True}
    data["web"] = {"public_url": public}
    rows = _receiver_rows(tmp_path, data)
    assert rows["webhook receiver"]["status"] == "pass" and public in rows["webhook receiver"]["detail"]
    assert rows["webhook secret"]["status"] == "pass"
    assert rows["webhook secret"]["detail"] == f"{len(STRONG)} bytes, not a published default"
    missing = rows["Jira webhook points here"]
    assert missing["status"] == "fail"
    assert f"{public}/webhooks/jira" in missing["fix"]
    hook = httpx2.post(
        f"{sims[1].url}/rest/webhooks/1.0/webhook",
        json={"name": "ml-connector", "url": f"{public}/webhooks/jira", "events": ["jira:issue_updated"]},
        auth=("connector@example.com", "sim-api-token"),
        timeout=10,
    )
    assert hook.status_code == 201, hook.text
    rows = _receiver_rows(tmp_path, data)
    assert rows["Jira webhook points here"]["status"] == "pass"


def test_check_warns_about_the_simulator_secret_on_the_simulator(env: None, tmp_path: Path) -> None:
    data = example_config()
    data["jira"].update(simulator=True, webhook_secret="sim-webhook-secret")
    rows = _receiver_rows(tmp_path, data)
    assert rows["webhook secret"]["status"] == "warn"
    assert "jira.simulator" in rows["webhook secret"]["detail"]


def test_check_finds_the_oauth_dynamic_webhook_registered_for_this_url(tmp_path: Path) -> None:
    public = "https://connector-oauth.example.com"
    store_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    with Sim.start() as sim:
        tokens = MemoryTokenStore()
        consent(sim, tokens).session.close()
        connection = oauth_connection(sim)
        data = example_config()
        data["jira"] = connection.model_dump(mode="json")
        data["jira"]["auth"]["client_secret"] = connection.auth.client_secret.get_secret_value()  # type: ignore[union-attr]
        data["webhooks"] = {"enabled": True}
        data["web"] = {"public_url": public}
        data["store"] = {"url": store_url}
        config = load_config(write_config(tmp_path, data), env={})

        def unreachable_ifs() -> Any:
            raise Unavailable("IFS is not part of this test", system="ifs")

        def rows() -> dict[str, Any]:
            checker = Checker(
                config,
                ifs_factory=unreachable_ifs,
                jira_factory=lambda: JiraClient.from_connection(connection, token_store=tokens),
                store_factory=lambda: Store.open(store_url),
            )
            return {r.name: r for r in checker.run()}

        before = rows()["Jira webhook points here"]
        assert before.status == "warn" and "run` registers it" in (before.fix or "")
        assert rows()["webhook secret"].detail.startswith("OAuth app")
        store = Store.open(store_url)
        jira = JiraClient.from_connection(connection, token_store=tokens)
        try:
            WebhookManager.for_config(config, lambda: jira, store).ensure()
        finally:
            jira.close()
            store.close()
        after = rows()["Jira webhook points here"]
        assert after.status == "pass", after
        assert f"{public}/webhooks/jira" in after.detail
