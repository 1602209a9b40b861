from __future__ import annotations

import pytest

from ml_connector.errors import ConfigError
from ml_connector.jira.fields import FieldRegistry

_CT = "com.atlassian.jira.plugin.system.customfieldtypes:"
FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "schema": {"type": "string", "system": "summary"}},
    {"id": "customfield_10050", "name": "GL Account", "custom": True,
     "schema": {"type": "string", "custom": _CT + "textfield", "customId": 10050}},
    {"id": "customfield_10051", "name": "Cost Center", "custom": True,
     "schema": {"type": "option", "custom": _CT + "select", "customId": 10051}},
    {"id": "customfield_10060", "name": "Cost Center", "custom": True,
     "schema": {"type": "string", "custom": _CT + "textfield", "customId": 10060}},
]


def test_unique_names_and_ids_resolve() -> None:
    reg = FieldRegistry(FIELDS)
    assert reg.resolve("GL Account") == "customfield_10050"
    assert reg.resolve("gl account") == "customfield_10050"
    assert reg.resolve("customfield_10060") == "customfield_10060"
    assert reg.resolve("Summary") == "summary"
    assert len(reg) == 4


def test_ambiguous_name_names_both_ids() -> None:
    reg = FieldRegistry(FIELDS)
    with pytest.raises(ConfigError) as info:
        reg.resolve("Cost Center")
    assert "customfield_10051" in str(info.value) and "customfield_10060" in str(info.value)


def test_type_disambiguates() -> None:
    reg = FieldRegistry(FIELDS)
    assert reg.resolve("Cost Center", field_type="select") == "customfield_10051"
    assert reg.resolve("Cost Center", field_type="textfield") == "customfield_10060"
    assert reg.resolve("Cost Center", field_type="option") == "customfield_10051"
    with pytest.raises(ConfigError, match="has type"):
        reg.resolve("Cost Center", field_type="datepicker")


def test_unknown_and_mistyped() -> None:
    reg = FieldRegistry(FIELDS)
    with pytest.raises(ConfigError, match="no Jira field"):
        reg.resolve("Nope")
    with pytest.raises(ConfigError, match="does not exist"):
        reg.resolve("customfield_99999")
    with pytest.raises(ConfigError, match="not select"):
        reg.resolve("customfield_10050", field_type="select")
