"""Migrations (store/schema.py and store/migrations) on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from ml_connector.store import Store


def test_migrations_create_every_table(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    expected = {
        "runs",
        "cursors",
        "records",
        "audit_events",
        "webhook_inbox",
        "webhook_subscriptions",
        "credentials",
        "leases",
        "flow_controls",
        "jira_users",
        "system_health",
        "metadata_cache",
        "alembic_version",
    }
    assert expected <= names
