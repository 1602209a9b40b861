"""Connections: every row belongs to a connector connection (one IFS tenant + one Jira site).

One store serves many connections. Each table gains ``connection`` (existing rows: ``default``, the name of a
single-connection config), and every key that identifies a row starts with it: records by connection, flow and IFS
key; the inbox by connection and delivery id; cursors, leases, credentials, controls, health, the user cache and
webhook subscriptions by connection and name. Runs and audit events keep their ids and carry the column for
filtering.

On SQLite the keys change by copying each table (Alembic batch mode); ``store.db.migrate`` turns foreign keys off
around it, or dropping the old ``records`` would cascade into ``audit_events``.

Revision ID: 0006_conn_connections
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_conn_connections"
down_revision = "0005"
branch_labels = None
depends_on = None

# table -> the columns after ``connection`` in its new primary key
_KEYED = {
    "cursors": "name",
    "credentials": "name",
    "leases": "name",
    "flow_controls": "flow",
    "jira_users": "email",
    "system_health": "system",
    "webhook_subscriptions": "webhook_id",
}
# table -> (old unique constraint, its columns after ``connection``)
_UNIQUE = {
    "records": ("uq_records_flow_ifs_key", ["flow", "ifs_key"]),
    "webhook_inbox": ("uq_webhook_inbox_delivery_id", ["delivery_id"]),
}
_PLAIN = ("runs", "audit_events")


def _column() -> sa.Column[str]:
    return sa.Column("connection", sa.String(length=40), nullable=False, server_default="default")


def upgrade() -> None:
    for table in _PLAIN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_column())
    for table, key in _KEYED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_column())
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", ["connection", key])
    for table, (old, columns) in _UNIQUE.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_column())
            batch_op.drop_constraint(old, type_="unique")
            batch_op.create_unique_constraint(f"uq_{table}_connection_{'_'.join(columns)}", ["connection", *columns])


def downgrade() -> None:
    for table, (old, columns) in _UNIQUE.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_connection_{'_'.join(columns)}", type_="unique")
            batch_op.create_unique_constraint(old, columns)
            batch_op.drop_column("connection")
    for table, key in _KEYED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", [key])
            batch_op.drop_column("connection")
    for table in _PLAIN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("connection")
