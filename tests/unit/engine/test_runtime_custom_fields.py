"""The runtime resolves a flow's custom fields with the registry's resolver; a failure stops the run naming the key."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ml_connector.engine.runtime import Connector
from ml_connector.errors import ConfigError
from ml_connector.jira.client import JiraClient
from ml_connector.jira.fields import FieldRegistry
from ml_connector.store import Store

from ..diagnostics.helpers import example
from ..jira.test_fields import FIELDS


def _connector(tmp_path: Path, custom_fields: dict[str, str]) -> Connector:
    def change(data: dict[str, Any]) -> None:
        data["flows"][0]["mapping"]["custom_fields"] = custom_fields
        data["flows"][0]["mapping"]["project"]["default"] = None  # no createmeta read for select fields

    jira = SimpleNamespace(fields=lambda refresh=False: FieldRegistry(FIELDS), session=SimpleNamespace(stop=None))
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    return Connector(example(tmp_path, change), store=store, jira_factory=lambda: cast(JiraClient, jira))


def test_fields_resolve_to_ids_and_kinds(tmp_path: Path) -> None:
    keys = {"gl account": "{{ OrderNo }}", "Cost Center:text": "{{ OrderNo }}", "Cost Center:select": "{{ OrderNo }}"}
    connector = _connector(tmp_path, keys)
    targets = connector.resolve_fields(connector.config.flows[0])
    assert {k: (t.id, t.kind) for k, t in targets.items()} == {
        "gl account": ("customfield_10050", "text"),
        "Cost Center:text": ("customfield_10060", "text"),
        "Cost Center:select": ("customfield_10051", "select"),
    }


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("Cost Center", "Jira field name 'Cost Center' is ambiguous"),
        ("Nope", "no Jira field named 'Nope' is visible to the connector's user"),
    ],
)
def test_an_unresolvable_field_is_a_config_error_naming_the_key(tmp_path: Path, key: str, message: str) -> None:
    connector = _connector(tmp_path, {key: "{{ OrderNo }}"})
    with pytest.raises(ConfigError) as info:
        connector.resolve_fields(connector.config.flows[0])
    assert info.value.path == f"flows[0].mapping.custom_fields.{key}"
    assert str(info.value).startswith(f"{info.value.path}: {message}")
