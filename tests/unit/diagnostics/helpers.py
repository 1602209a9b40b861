"""The example config, changed in place, as the diagnostics see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ml_connector.config.models import ConnectorConfig, load_config

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"


def example(tmp_path: Path, change: Callable[[dict[str, Any]], None] = lambda data: None) -> ConnectorConfig:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path, env={})
