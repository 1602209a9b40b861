"""``ml-connector check`` against the simulators: passes with the example config, fails with a fix otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ml_connector.cli.app import ExitCode, _register_commands, app
from ml_connector.sim.server import ServerHandle

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
