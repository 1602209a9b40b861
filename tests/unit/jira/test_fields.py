from __future__ import annotations

import pytest

from ml_connector.errors import ConfigError
from ml_connector.jira.fields import FieldRegistry, split_field_name

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


# -- the one resolver of configured custom-field keys (``check`` and the runtime both use it) -------------------------


def test_split_field_name_reads_only_known_type_suffixes() -> None:
    assert split_field_name("Cost Center:text") == ("Cost Center", "textfield")
    assert split_field_name("Amount:number") == ("Amount", "float")
    assert split_field_name("Cost Center:select") == ("Cost Center", "select")
    assert split_field_name("Ratio 1:2") == ("Ratio 1:2", None)
    assert split_field_name(":text") == (":text", None)


def test_configured_key_resolves_by_id_name_any_case_or_type_suffix() -> None:
    reg = FieldRegistry(FIELDS)
    assert reg.resolve_configured("customfield_10060") == "customfield_10060"
    assert reg.resolve_configured("GL Account") == "customfield_10050"
    assert reg.resolve_configured("gl ACCOUNT") == "customfield_10050"
    assert reg.resolve_configured("Cost Center:text") == "customfield_10060"
    assert reg.resolve_configured("cost center:select") == "customfield_10051"


def test_configured_key_failures_are_the_registry_errors() -> None:
    reg = FieldRegistry(FIELDS)
    with pytest.raises(ConfigError) as ambiguous:
        reg.resolve_configured("Cost Center")
    assert str(ambiguous.value) == (
        "Jira field name 'Cost Center' is ambiguous: customfield_10051 (select), customfield_10060 (textfield); "
        "configure the field id or its type to choose one"
    )
    with pytest.raises(ConfigError) as missing:
        reg.resolve_configured("Nope:text")
    assert str(missing.value) == "no Jira field named 'Nope' is visible to the connector's user"
    assert missing.value.path is None


def test_with_a_path_the_error_names_the_config_key() -> None:
    reg = FieldRegistry(FIELDS)
    path = "flows[0].mapping.custom_fields.Nope"
    with pytest.raises(ConfigError) as missing:
        reg.resolve_configured("Nope", path=path)
    assert missing.value.path == path
    assert str(missing.value) == f"{path}: no Jira field named 'Nope' is visible to the connector's user"
    assert missing.value.__suppress_context__  # raised from None: the config path is the whole story
