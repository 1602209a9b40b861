"""Where the log level and format come from: command line, then environment, then config, then the default."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ml_connector.cli import context
from ml_connector.errors import ConfigError


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(context, "configure", lambda **kw: seen.append(kw))
    monkeypatch.setattr(context, "log_overrides", {"level": None, "format": None})
    monkeypatch.delenv(context.LOG_LEVEL_ENV, raising=False)
    monkeypatch.delenv(context.LOG_FORMAT_ENV, raising=False)
    return seen


def _config(**values: Any) -> Any:
    return SimpleNamespace(**{"log_level": "INFO", "log_format": None, **values})


def test_config_then_env_then_command_line(calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    context.configure_logging(_config(log_format="json", log_level="WARNING"))
    monkeypatch.setenv(context.LOG_FORMAT_ENV, "console")
    monkeypatch.setenv(context.LOG_LEVEL_ENV, "ERROR")
    context.configure_logging(_config(log_format="json"))
    context.log_overrides.update(level="DEBUG", format="json")
    context.configure_logging(_config())
    assert calls == [
        {"level": "WARNING", "log_format": "json"},
        {"level": "ERROR", "log_format": "console"},
        {"level": "DEBUG", "log_format": "json"},
    ]


def test_a_service_off_a_terminal_logs_json(calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "default_log_format", lambda: "json")
    context.configure_logging(_config(), service=True)
    context.configure_logging(_config())
    assert [c["log_format"] for c in calls] == ["json", "console"]


def test_an_unknown_format_is_a_config_error(calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(context.LOG_FORMAT_ENV, "xml")
    with pytest.raises(ConfigError, match="ML_CONNECTOR_LOG_FORMAT"):
        context.configure_logging(_config())
