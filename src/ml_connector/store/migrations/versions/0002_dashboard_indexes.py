"""dashboard indexes

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index("ix_records_flow_id", ["flow", "id"], unique=False)
        batch_op.create_index("ix_records_ifs_key", ["ifs_key"], unique=False)
        batch_op.create_index("ix_records_state_id", ["state", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_state_id")
        batch_op.drop_index("ix_records_ifs_key")
        batch_op.drop_index("ix_records_flow_id")
