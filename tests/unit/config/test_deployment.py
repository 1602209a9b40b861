"""Many connections in one file: the connections: list, its errors and the single-connection format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.harness import connections_config

from ml_connector.config.models import load_config, load_connections
from ml_connector.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_single_connection_file_is_one_connection_named_default(tmp_path: Path) -> None:
    path = tmp_path / "ml-connector.yaml"
    path.write_text(EXAMPLE.read_text())
    configs = load_connections(path, env={})
    assert [c.name for c in configs] == ["default"]
    assert load_config(path, env={}).name == "default"
    assert load_config(path, env={}, connection="default").name == "default"


def test_connections_list_shares_the_top_level_settings(tmp_path: Path) -> None:
    data = connections_config("acme", "globex")
    data["web"] = {"port": 8123}
    path = _write(tmp_path, data)
    configs = load_connections(path, env={})
    assert [c.name for c in configs] == ["acme", "globex"]
    assert {c.web.port for c in configs} == {8123}
    assert len({c.store.url for c in configs}) == 1  # one store beside the file, shared
    acme = load_config(path, env={}, connection="globex")
    assert acme.ifs.client_secret.get_secret_value() == "ifs-secret-of-globex"
    assert "ifs-secret-of-acme" not in acme.secret_values()


def test_several_connections_need_a_name_to_pick_one(tmp_path: Path) -> None:
    path = _write(tmp_path, connections_config("acme", "globex"))
    with pytest.raises(ConfigError, match=r"2 connections \(acme, globex\).*--connection"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match=r"no connection named 'initech' \(configured: acme, globex\)"):
        load_config(path, env={}, connection="initech")


def test_errors_name_the_connection_item(tmp_path: Path) -> None:
    data = connections_config("acme", "globex")
    data["connections"][1]["jira"]["site"] = "not a url"
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert err.value.path == "connections[1].jira.site"


def test_template_errors_name_the_connection_item(tmp_path: Path) -> None:
    data = connections_config("acme", "globex")
    data["connections"][1]["flows"][0]["mapping"]["summary"] = "{{ NoSuchField }}"
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert (err.value.path or "").startswith("connections[1].flows[0].mapping.summary")


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, connections_config("acme", "globex", "acme")), env={})
    assert err.value.path == "connections[2].name"
    assert "used twice" in str(err.value) and "connections[0]" in str(err.value)


@pytest.mark.parametrize("name", ["Acme", "a b", "", "x" * 41])
def test_bad_names_are_refused_with_their_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, connections_config("ok", name)), env={})
    assert err.value.path == "connections[1].name"


def test_missing_name_is_refused(tmp_path: Path) -> None:
    data = connections_config("acme")
    del data["connections"][0]["name"]
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert err.value.path == "connections[0].name"


def test_per_connection_key_at_the_top_level_is_refused(tmp_path: Path) -> None:
    data = connections_config("acme")
    data["sync"] = {"bulk_size": 10}
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert err.value.path == "sync" and "connections[N].sync" in str(err.value)


def test_shared_key_inside_a_connection_is_refused(tmp_path: Path) -> None:
    data = connections_config("acme", "globex")
    data["connections"][1]["store"] = {"url": "sqlite:///x.sqlite"}
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert err.value.path == "connections[1].store" and "top level" in str(err.value)


@pytest.mark.parametrize("value", [[], {}, "acme"])
def test_connections_must_be_a_non_empty_list(tmp_path: Path, value: object) -> None:
    data = connections_config("acme")
    data["connections"] = value
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert err.value.path == "connections"


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    data = connections_config("acme")
    data["stores"] = {}
    with pytest.raises(ConfigError) as err:
        load_connections(_write(tmp_path, data), env={})
    assert err.value.path == "stores"
