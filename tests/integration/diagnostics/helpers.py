"""Run ``ml-connector check`` on a config against the simulators and read what it reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ml_connector.cli.app import ExitCode, app

from ..runner.simenv import write_config

SECRETS = ("sim-secret", "sim-api-token", "sim-webhook-secret", "wrong-Secret-4711")
STRONG = "k7Qw9zX2mN4pL8rT1vB6yH3jF5dS0aGc-strong"


def check(tmp_path: Path, data: dict[str, Any], *extra: str) -> tuple[int, str]:
    """The exit code and the table (Rich's wrapping undone for substring checks); no secret may be printed."""
    data.setdefault("store", {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"})
    path = write_config(tmp_path, data)
    result = CliRunner().invoke(app, ["check", "--config", str(path), *extra], catch_exceptions=False)
    output = " ".join(result.output.split())
    for secret in SECRETS:
        assert secret not in result.output, f"secret {secret!r} printed"
    return result.exit_code, output


def json_rows(tmp_path: Path, data: dict[str, Any], *extra: str) -> tuple[int, list[dict[str, Any]]]:
    """``check --json``: the exit code and one row per check (system, name, status, detail, fix)."""
    data.setdefault("store", {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"})
    path = write_config(tmp_path, data)
    result = CliRunner().invoke(app, ["check", "--json", "--config", str(path), *extra], catch_exceptions=False)
    for secret in (*SECRETS, STRONG):
        assert secret not in result.output, f"secret {secret!r} printed"
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def failures(tmp_path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The failed checks of a run that must fail."""
    code, rows = json_rows(tmp_path, data)
    assert code == ExitCode.ERROR, rows
    assert rows
    return [r for r in rows if r["status"] == "fail"]
