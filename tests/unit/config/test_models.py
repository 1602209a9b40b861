from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector.config.models import ConnectorConfig, load_config, parse_schedule
from ml_connector.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_example_config_loads_and_defaults_the_store_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "ml-connector.yaml"
    path.write_text(EXAMPLE.read_text())
    config = load_config(path, env={})
    assert isinstance(config, ConnectorConfig)
    assert config.store.url == f"sqlite:///{(tmp_path / 'ml-connector.sqlite').resolve()}"
    po = config.flow("purchase_orders")
    assert po.entity_set == "PurchaseOrderHandling.svc/PurchaseOrderSet" and po.key == "OrderNo"
    wo = config.flow("work_orders")
    # preset and user writeback settings merge instead of replacing each other
    assert wo.writeback.entity_set == "PrepareWorkOrderHandling.svc/ActiveSeparateSet"
    assert wo.writeback.status_field == "Cf_Jira_Status"
    assert config.ifs.client_secret.get_secret_value() == "sim-secret"
    assert "sim-secret" not in repr(config)


def test_env_interpolation_and_missing_variable_names_the_path(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("${IFS_CLIENT_SECRET:-sim-secret}", "${IFS_SECRET_NOT_SET}")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text), env={})
    assert err.value.path == "ifs.client_secret"
    assert "IFS_SECRET_NOT_SET" in str(err.value)
    config = load_config(_write(tmp_path, text), env={"IFS_SECRET_NOT_SET": "s3cr3t-value"})
    assert config.ifs.client_secret.get_secret_value() == "s3cr3t-value"


def test_page_size_of_5000_is_refused_with_its_path(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("page_size: 1000", "page_size: 5000")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text), env={})
    assert err.value.path == "ifs.page_size"
    assert "5000" in str(err.value)


def test_errors_inside_lists_name_the_index(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("issue_type: Work Order", "issue_typo: Work Order")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text), env={})
    assert str(err.value).startswith("flows[1].mapping.")


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2"):
        load_config(_write(tmp_path, "ifs:\n  url: [unclosed\n"), env={})


def test_secrets_file_interpolation(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    text = EXAMPLE.read_text().replace("${IFS_CLIENT_SECRET:-sim-secret}", "${file:" + str(secret) + "}")
    assert load_config(_write(tmp_path, text), env={}).ifs.client_secret.get_secret_value() == "from-file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hourly", ("cron", "0 * * * *")),
        ("daily", ("cron", "0 2 * * *")),
        ("every 10m", ("interval", 600.0)),
        ("*/15 * * * *", ("cron", "*/15 * * * *")),
    ],
)
def test_schedules(text: str, expected: tuple[str, object]) -> None:
    assert parse_schedule(text) == expected


def test_invalid_cron_is_refused() -> None:
    with pytest.raises(ValueError, match="cron"):
        parse_schedule("61 * * * *")


def _with_summary(tmp_path: Path, summary: str) -> Path:
    original = "summary: \"PO {{ OrderNo }}: {{ Description or '(no description)' }}\""
    text = EXAMPLE.read_text()
    assert original in text
    return _write(tmp_path, text.replace(original, f"summary: {summary!r}"))


def test_unsafe_template_is_refused_at_load_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_with_summary(tmp_path, "{{ ''.__class__ }}"), env={})
    assert err.value.path == "flows[0].mapping.summary"
    assert "internal attribute '__class__'" in str(err.value)


def test_unknown_template_field_names_the_path_and_the_fields_available(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_with_summary(tmp_path, "PO {{ OrderNr }}"), env={})
    assert str(err.value).startswith(
        "flows[0].mapping.summary: unknown field 'OrderNr' in template 'PO {{ OrderNr }}' — fields available: "
        "OrderNo, VendorNo, Description,"
    )
    assert "supplier, person, project, lines, line, flow, key" in str(err.value)


def test_old_template_syntax_is_refused_with_its_conversion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_with_summary(tmp_path, "PO {OrderNo}: {Description|or:(none)}"), env={})
    assert err.value.path == "flows[0].mapping.summary"
    assert "old single-brace syntax" in str(err.value)
    assert "PO {{ OrderNo }}: {{ Description or '(none)' }}" in str(err.value)
    assert "docs/configuration.md" in str(err.value)


def test_every_template_of_a_mapping_is_checked_with_its_own_path(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('"{{ WorkTypeId|lower }}"', '"{{ WorkTypeId|shout }}"')
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text), env={})
    assert err.value.path == "flows[1].mapping.labels[1]"
    assert "No filter named 'shout'" in str(err.value)


def test_secret_values_lists_every_configured_secret_once(tmp_path: Path) -> None:
    """One list for every redactor: connections, webhook secret, both dashboard tokens and the store's key."""
    hook = "webhook-secret-0123456789-0123456789"
    text = EXAMPLE.read_text().replace("  # webhook_secret: written by", f"  webhook_secret: {hook}  # written by")
    text += (
        "\nstore:\n  credentials_key: sim-secret\n"  # the IFS client secret's value again: listed once
        "web:\n  admin_token: admin-token-0123456789\n  read_token: read-token-0123456789\n"
    )
    config = load_config(_write(tmp_path, text), env={})
    assert config.secret_values() == (
        "sim-secret",
        "sim-api-token",
        hook,
        "admin-token-0123456789",
        "read-token-0123456789",
    )
    bare = load_config(_write(tmp_path, EXAMPLE.read_text()), env={})
    assert bare.secret_values() == ("sim-secret", "sim-api-token")


def test_server_time_zone_is_an_iana_name(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = EXAMPLE.read_text()
    path.write_text(text)
    assert load_config(path, env={}).ifs.server_time_zone == "UTC"  # the default
    zoned = text.replace("  page_size: 1000 ", "  server_time_zone: America/Chicago\n  page_size: 1000 ", 1)
    path.write_text(
        zoned.replace(
            "    cursor_field: Cf_Changed_At ", "    cursor_time_zone_aware: false\n    cursor_field: Cf_Changed_At ", 1
        )
    )
    config = load_config(path, env={})
    assert config.ifs.server_zone.key == "America/Chicago" and not config.flows[0].cursor_time_zone_aware
    path.write_text(zoned.replace("America/Chicago", "CST-ish"))
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_config(path, env={})


def test_ifs_reads_start_at_eight_in_flight_even_with_other_http_keys() -> None:
    from ml_connector.config.connections import HttpSettings, IfsConnection

    base = {"url": "https://tenant.example", "realm": "r", "client_id": "c", "client_secret": "s"}
    assert IfsConnection.model_validate(base).http.initial_in_flight == 8
    given = IfsConnection.model_validate({**base, "http": {"requests_per_minute": 900}})
    assert given.http.initial_in_flight == 8 and given.http.requests_per_minute == 900
    assert IfsConnection.model_validate({**base, "http": {"initial_in_flight": 2}}).http.initial_in_flight == 2
    assert HttpSettings().initial_in_flight == 4  # Jira's endpoints start from their pacing instead
