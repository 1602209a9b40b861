"""``runner.rate_buckets``: local by default; postgres only on a PostgreSQL store, refused with its YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector.config.models import ConnectorConfig, load_config
from ml_connector.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"


def _load(tmp_path: Path, extra: str) -> ConnectorConfig:
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE.read_text() + extra)
    return load_config(path, env={})


def test_local_is_the_default(tmp_path: Path) -> None:
    config = _load(tmp_path, "")
    assert config.runner.rate_buckets == "local"


@pytest.mark.parametrize(
    "store",
    ["", "store: {url: 'sqlite:////tmp/x.sqlite'}\n"],
    ids=["default-sqlite", "sqlite"],
)
def test_postgres_buckets_on_a_sqlite_store_are_refused_naming_the_key(tmp_path: Path, store: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"runner: {{rate_buckets: postgres}}\n{store}")
    assert err.value.path == "runner.rate_buckets"
    assert "PostgreSQL" in str(err.value) and "store.url" in str(err.value)


@pytest.mark.parametrize(
    "url", ["postgresql://u@db/mlc", "postgresql+psycopg://u@db/mlc", "postgres://u@db/mlc"], ids=str
)
def test_postgres_buckets_on_a_postgresql_store_are_accepted(tmp_path: Path, url: str) -> None:
    config = _load(tmp_path, f"runner: {{rate_buckets: postgres}}\nstore: {{url: '{url}'}}\n")
    assert config.runner.rate_buckets == "postgres"


def test_an_unknown_kind_of_bucket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "runner: {rate_buckets: redis}\n")
    assert err.value.path == "runner.rate_buckets"
