"""The Jira checks against the Jira simulator: an ambiguous custom field name and a project nobody can see."""

from __future__ import annotations

from pathlib import Path

from ..runner.simenv import example_config
from .helpers import failures


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
