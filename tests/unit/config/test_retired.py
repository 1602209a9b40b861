"""Retired settings: an old config file still loads, with one deprecation note per retired key naming its path."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from ml_connector.cli.context import load
from ml_connector.config.models import ConnectorConfig, load_config
from ml_connector.config.retired import RETIRED, drop_retired
from ml_connector.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"


def _old_file(tmp_path: Path, **sections: dict[str, object]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_old_file_with_retired_keys_loads_and_names_each_path(tmp_path: Path) -> None:
    path = _old_file(
        tmp_path,
        runner={"misfire_grace": "5m", "lease_ttl": "30s"},
        sync={"writeback_conflict_retries": 2, "not_found_alert_min": 9},
        webhooks={"read_timeout": "3s", "max_body_bytes": 2048},
        ifs={"api_path": "/main/ifsapplications/projection/v1", "time_zone_aware": True},
    )
    config = load_config(path, env={})
    named = sorted(note.split(" ", 1)[0] for note in config.deprecations())
    assert named == [
        "ifs.api_path",
        "ifs.time_zone_aware",
        "runner.misfire_grace",
        "sync.not_found_alert_min",
        "sync.writeback_conflict_retries",
        "webhooks.max_body_bytes",
        "webhooks.read_timeout",
    ]
    assert all("remove it from the config file" in note for note in config.deprecations())
    assert config.runner.lease_ttl == 30.0  # the keys beside a retired one still count


def test_retired_oauth_keys_are_dropped_from_the_auth_mapping(tmp_path: Path) -> None:
    auth = {"kind": "oauth", "client_id": "c", "client_secret": "s", "redirect_uri": "http://127.0.0.1/cb",
            "scopes": ["read:jira-work"]}
    config = load_config(_old_file(tmp_path, jira={"auth": auth}), env={})
    assert [note.split(" ", 1)[0] for note in config.deprecations()] == ["jira.auth.redirect_uri", "jira.auth.scopes"]


def test_a_current_file_has_no_notes_and_unknown_keys_are_still_refused(tmp_path: Path) -> None:
    assert load_config(_old_file(tmp_path), env={}).deprecations() == ()
    with pytest.raises(ConfigError, match=r"runner\.misfire_graze"):
        load_config(_old_file(tmp_path, runner={"misfire_graze": "5m"}), env={})


def test_dropping_leaves_the_input_untouched() -> None:
    data = {"sync": {"writeback_conflict_retries": 1, "max_attempts": 3}, "web": {"port": 9000}}
    cleaned, notes = drop_retired(data)
    assert cleaned == {"sync": {"max_attempts": 3}, "web": {"port": 9000}}
    assert data["sync"] == {"writeback_conflict_retries": 1, "max_attempts": 3}
    assert len(notes) == 1


def _models(annotation: object) -> list[type[BaseModel]]:
    """The models an annotation allows (a union such as ``jira.auth`` allows several)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models(arg)]


def test_no_retired_key_is_still_a_setting() -> None:
    for path in RETIRED:
        models: list[type[BaseModel]] = [ConnectorConfig]
        for key in path[:-1]:
            models = [m for model in models for m in _models(model.model_fields[key].annotation)]
        assert models and all(path[-1] not in model.model_fields for model in models), path


def test_the_cli_logs_a_warning_for_each_retired_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ML_CONNECTOR_LOG_LEVEL", raising=False)
    load(_old_file(tmp_path, web={"max_form_bytes": 4096}))
    err = capsys.readouterr().err
    assert "config.deprecated" in err and "web.max_form_bytes is no longer a setting" in err


def test_runner_kind_is_a_setting_again_and_procrastinate_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runner\.kind: 'procrastinate' keeps its jobs in PostgreSQL"):
        load_config(_old_file(tmp_path, runner={"kind": "procrastinate"}), env={})
    pg = _old_file(tmp_path, runner={"kind": "procrastinate"}, store={"url": "postgresql+psycopg://u@127.0.0.1/db"})
    config = load_config(pg, env={})
    assert config.runner.kind == "procrastinate" and config.deprecations() == ()
    assert load_config(_old_file(tmp_path, runner={"kind": "local"}), env={}).runner.kind == "local"
