"""What every process took from each shared rate bucket and waited for it (``runner.rate_buckets: postgres``), so
the ``run`` process's /metrics shows the workers' budget use: two counters per bucket, kept by the take itself.

Additive (columns with defaults): a worker of the previous version still takes from the buckets during a rolling
upgrade, its takes are just not counted.

Revision ID: 0008_opsmetrics_bucket_use
Revises: 0007_rate_buckets
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_opsmetrics_bucket_use"
down_revision = "0007_rate_buckets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rate_buckets") as batch:
        batch.add_column(sa.Column("taken", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("waited", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("rate_buckets") as batch:
        batch.drop_column("waited")
        batch.drop_column("taken")
