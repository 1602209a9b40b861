"""Alembic environment: migrations run on the connection the store hands over (no URL in alembic.ini)."""

from __future__ import annotations

from alembic import context

from ml_connector.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    raise RuntimeError("run migrations through ml_connector.store.migrate(), which supplies the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
