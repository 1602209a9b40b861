"""Shared rate budgets: token buckets, 429 holds and the points-quota gauge every process draws on
(``runner.rate_buckets: postgres``). Created on SQLite too, where they stay empty: one schema for both.

Revision ID: 0006_budget_rate_buckets
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_budget_rate_buckets"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )
    op.create_table(
        "rate_holds",
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_holds")),
    )
    op.create_table(
        "rate_quota",
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("resets_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_quota")),
    )


def downgrade() -> None:
    op.drop_table("rate_quota")
    op.drop_table("rate_holds")
    op.drop_table("rate_buckets")
