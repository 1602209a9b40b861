"""Write-back order marks (the newest Jira change applied per record) and write-back backoff.

``jira_updated`` and ``jira_changelog_id`` are the issue's ``updated`` time and changelog id of the newest status the
store accepted; an older or equal event is stale. ``writeback_attempts`` and ``writeback_next_attempt_at`` are the
write-back side's own retry state, so a failing IFS write never delays or parks the outbound side's retries.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jira_updated", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("jira_changelog_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("writeback_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("writeback_next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("writeback_next_attempt_at")
        batch_op.drop_column("writeback_attempts")
        batch_op.drop_column("jira_changelog_id")
        batch_op.drop_column("jira_updated")
