"""Jira metadata kept in the store (engine/runtime.py): a new process skips the reads; metadata from another site,
older than its TTL, or refuted by Jira is read again."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ml_connector.config.models import ConnectorConfig
from ml_connector.engine.runtime import JIRA_METADATA_TTL, Connector
from ml_connector.errors import ConfigError, Rejected, StaleMetadata
from ml_connector.ifs import IfsClient
from ml_connector.jira.client import JiraClient
from ml_connector.jira.fields import FieldRegistry
from ml_connector.mapping import MappingContext
from ml_connector.store import Store, utcnow

from ..diagnostics.helpers import example
from ..jira.test_fields import FIELDS

FIELD_LIST = [
    *FIELDS,
    {"id": "customfield_10070", "name": "Supplier", "custom": True, "schema": {"type": "string"}},
    {"id": "customfield_10080", "name": "IFS Reference", "custom": True, "schema": {"type": "string"}},
]
SELECT = "customfield_10051"


class MetadataJira:
    """The Jira metadata endpoints a mapping context reads, counted."""

    def __init__(self, fields: list[dict[str, Any]] | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.field_list = list(fields or FIELD_LIST)
        self.options = ["CC-100", "CC-200"]
        self.session = type("Session", (), {"stop": None})()

    def fields(self, *, refresh: bool = False) -> FieldRegistry:
        self.calls["field"] += 1
        return FieldRegistry(self.field_list)

    def priorities(self) -> list[dict[str, Any]]:
        self.calls["priority"] += 1
        return [{"name": "Medium"}, {"name": "High"}]

    def projects(self) -> list[dict[str, Any]]:
        self.calls["project"] += 1
        return [{"key": "PROC"}, {"key": "CAPEX"}]

    def create_issue_types(self, project: str) -> list[dict[str, Any]]:
        self.calls["createmeta types"] += 1
        return [{"id": "10002", "name": "Purchase Order"}]

    def create_fields(self, project: str, type_id: str) -> list[dict[str, Any]]:
        self.calls["createmeta fields"] += 1
        return [{"fieldId": SELECT, "allowedValues": [{"value": v} for v in self.options]}]


def _config(tmp_path: Path, url: str = "https://acme.atlassian.net") -> ConnectorConfig:
    def change(data: dict[str, Any]) -> None:
        data["jira"]["url"] = url

    return example(tmp_path, change)


def _no_ifs() -> IfsClient:
    """IFS lookups that find nothing: only the Jira metadata is under test."""
    return cast(IfsClient, SimpleNamespace(iter_records=lambda *a, **k: iter(()), session=SimpleNamespace(stop=None)))


def _connector(config: ConnectorConfig, store: Store, jira: MetadataJira) -> Connector:
    return Connector(config, store=store, jira_factory=lambda: cast(JiraClient, jira), ifs_factory=_no_ifs)


def _context(c: Connector) -> MappingContext:
    return c.mapping_context(c.config.flow("purchase_orders"))


def test_a_new_process_uses_the_metadata_an_earlier_one_read(tmp_path: Path, store: Store) -> None:
    config = _config(tmp_path)
    first, second = MetadataJira(), MetadataJira()
    read = _context(_connector(config, store, first))
    kept = _context(_connector(config, store, second))  # another Connector: another process, the same store
    assert first.calls == {"field": 1, "priority": 1, "project": 1, "createmeta types": 1, "createmeta fields": 1}
    assert second.calls == {}
    assert kept.fields == read.fields and kept.priorities == read.priorities
    assert kept.jira_projects == read.jira_projects
    assert kept.fields["Cost Center:select"].allowed == frozenset({"CC-100", "CC-200"})


def test_metadata_of_another_jira_site_or_past_its_ttl_is_read_again(tmp_path: Path, store: Store) -> None:
    _context(_connector(_config(tmp_path), store, MetadataJira()))
    other_site = MetadataJira()
    _context(_connector(_config(tmp_path, "https://other.atlassian.net"), store, other_site))
    assert other_site.calls["field"] == 1 and other_site.calls["priority"] == 1

    config = _config(tmp_path)
    for name in ("jira:fields", "jira:priorities", "jira:projects", "createmeta:PROC:Purchase Order"):
        entry = store.metadata.get(
            name, source=_connector(config, store, MetadataJira())._jira_source(), max_age=timedelta(days=1)
        )
        assert entry is None  # the other site's read replaced them
    _context(_connector(config, store, MetadataJira()))  # this site's again
    old = utcnow() - timedelta(seconds=JIRA_METADATA_TTL + 60)
    probe = _connector(config, store, MetadataJira())
    for name in ("jira:fields", "jira:priorities", "jira:projects"):
        entry = store.metadata.get(name, source=probe._jira_source(), max_age=timedelta(days=1))
        assert entry is not None
        store.metadata.put(name, entry.value, source=probe._jira_source(), fetched_at=old)
    late = MetadataJira()
    _context(_connector(config, store, late))
    assert late.calls == {"field": 1, "priority": 1, "project": 1}  # createmeta was still young


def test_kept_metadata_in_a_shape_this_version_cannot_read_is_read_again(tmp_path: Path, store: Store) -> None:
    """An entry another version wrote (or a damaged one) is never used: the metadata is read from Jira again."""
    config = _config(tmp_path)
    probe = _connector(config, store, MetadataJira())
    for name, damaged in (("jira:fields", {"fields": "not a list"}), ("jira:priorities", 42), ("jira:projects", None)):
        store.metadata.put(name, damaged, source=probe._jira_source())
    fresh = MetadataJira()
    context = _context(_connector(config, store, fresh))
    assert fresh.calls["field"] == 1 and fresh.calls["priority"] == 1 and fresh.calls["project"] == 1
    assert context.fields["Cost Center:select"].allowed == frozenset({"CC-100", "CC-200"})


def test_a_refusal_over_a_field_with_metadata_older_than_the_run_is_a_retry_and_drops_it(
    tmp_path: Path, store: Store
) -> None:
    config = _config(tmp_path)
    c = _connector(config, store, MetadataJira())
    _context(c)
    read_at = c.jira_metadata_read_at()
    assert read_at is not None
    refused = Rejected("Field cannot be set", system="jira", status=400, details={"errors": {SELECT: "not on screen"}})
    assert c.stale_metadata(refused, read_at=read_at, since=read_at) is None  # read during the run: it stands

    later = read_at + timedelta(seconds=1)
    stale = c.stale_metadata(refused, read_at=read_at, since=later)
    assert isinstance(stale, StaleMetadata) and "Field cannot be set" in str(stale)
    assert c.jira_metadata_read_at() is None
    fresh = MetadataJira()
    _context(_connector(config, store, fresh))
    assert fresh.calls["field"] == 1  # dropped from the store as well

    content = Rejected("too long", system="jira", status=400, details={"errors": {"summary": "too long"}})
    assert c.stale_metadata(content, read_at=read_at, since=later) is None  # no metadata makes a summary too long
    ifs = Rejected("refused", system="ifs", status=400, details={"errors": {SELECT: "x"}})
    assert c.stale_metadata(ifs, read_at=read_at, since=later) is None


def test_a_configured_field_the_kept_registry_lacks_is_looked_up_again(tmp_path: Path, store: Store) -> None:
    config = _config(tmp_path)
    flow = config.flow("purchase_orders")
    without = [f for f in FIELD_LIST if f["name"] != "Supplier"]
    lacking = MetadataJira(without)
    with pytest.raises(ConfigError, match="Supplier"):
        _connector(config, store, lacking).resolve_fields(flow)
    assert lacking.calls["field"] == 1  # read from Jira just now: the configuration is wrong, not the registry

    now_there = MetadataJira()  # Jira has the field now; the registry kept in the store does not
    targets = _connector(config, store, now_there).resolve_fields(flow)
    assert targets["Supplier"].id == "customfield_10070"
    assert now_there.calls["field"] == 1


def test_a_connector_that_keeps_no_metadata_neither_reads_nor_writes_the_store(tmp_path: Path, store: Store) -> None:
    config = _config(tmp_path)
    _context(_connector(config, store, MetadataJira()))  # kept in the store by another process
    jira = MetadataJira()
    checking = Connector(
        config,
        store=cast(Store, None),
        jira_factory=lambda: cast(JiraClient, jira),
        ifs_factory=_no_ifs,
        keep_metadata=False,
    )  # ``check``: no store at all, and Jira as it is now
    _context(checking)
    checking.forget_jira_metadata()
    _context(checking)
    assert jira.calls["field"] == 2 and jira.calls["createmeta fields"] == 2
