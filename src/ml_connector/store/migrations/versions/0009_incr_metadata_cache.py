"""Far-side metadata kept across processes (Jira fields, priorities, projects, createmeta), so a new process does not
read it again before its first write.

Additive (a new table): a process of the previous version simply does not use it.

Revision ID: 0009_incr_metadata_cache
Revises: 0008_opsmetrics_bucket_use
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_incr_metadata_cache"
down_revision = "0008_opsmetrics_bucket_use"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metadata_cache",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connection", sa.String(40), nullable=False, server_default="default"),
        sa.PrimaryKeyConstraint("connection", "name", name=op.f("pk_metadata_cache")),
    )


def downgrade() -> None:
    op.drop_table("metadata_cache")
