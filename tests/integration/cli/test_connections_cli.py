"""``--connection NAME``: every command works on one connection of the file; several need a name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from e2e.harness import connections_config, example_config

from ml_connector.store import Store


def _config(tmp_path: Path, data: dict[str, Any]) -> Path:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    data["store"] = {"url": url}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _seed(path: Path, rows: dict[str, list[str]]) -> None:
    url = yaml.safe_load(path.read_text())["store"]["url"]
    for connection, keys in rows.items():
        store = Store.open(url, connection=connection)
        try:
            for key in keys:
                store.records.insert("purchase_orders", key, state="parked", last_error=f"failed in {connection}")
        finally:
            store.close()


def _cli(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "ML_CONNECTOR_CONNECTION"}
    full_env = {**inherited, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ml_connector.cli", *args, "-c", str(path)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def _keys(done: subprocess.CompletedProcess[str]) -> set[str]:
    assert done.returncode == 0, done.stderr
    return {json.loads(line)["key"] for line in done.stdout.splitlines() if line.strip()}


def test_each_connection_sees_only_its_records(tmp_path: Path) -> None:
    path = _config(tmp_path, connections_config("acme", "globex"))
    _seed(path, {"acme": ["A-1", "SAME"], "globex": ["G-1", "SAME"]})
    assert _keys(_cli(path, "--connection", "acme", "records", "--format", "json")) == {"A-1", "SAME"}
    assert _keys(_cli(path, "--connection", "globex", "records", "--format", "json")) == {"G-1", "SAME"}
    by_env = _cli(path, "records", "--format", "json", env={"ML_CONNECTOR_CONNECTION": "globex"})
    assert _keys(by_env) == {"G-1", "SAME"}
    listed = _cli(path, "--connection", "acme", "records", "--state", "failed")
    assert listed.returncode == 0, listed.stderr
    assert "failed in acme" in listed.stdout and "failed in globex" not in listed.stdout


def test_several_connections_and_no_name_is_a_clear_error(tmp_path: Path) -> None:
    path = _config(tmp_path, connections_config("acme", "globex"))
    done = _cli(path, "records")
    assert done.returncode == 2
    assert "2 connections (acme, globex)" in done.stderr and "--connection" in done.stderr


def test_an_unknown_connection_is_a_clear_error(tmp_path: Path) -> None:
    path = _config(tmp_path, connections_config("acme", "globex"))
    done = _cli(path, "--connection", "initech", "status")
    assert done.returncode == 2
    assert "no connection named 'initech' (configured: acme, globex)" in done.stderr


def test_a_single_connection_file_needs_no_name(tmp_path: Path) -> None:
    path = _config(tmp_path, example_config())
    _seed(path, {"default": ["D-1"], "acme": ["A-1"]})
    assert _keys(_cli(path, "records", "--format", "json")) == {"D-1"}
    assert _keys(_cli(path, "--connection", "default", "records", "--format", "json")) == {"D-1"}
    assert _cli(path, "--connection", "acme", "records").returncode == 2
