"""SQLAlchemy Core tables (DESIGN §5). Alembic migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

CONNECTION_MAX = 40  # config.deployment.CONNECTION_NAME_PATTERN


def connection_column() -> Column[str]:
    """The connector connection (IFS tenant + Jira site) a row belongs to (migration 0006): one store serves many;
    every query filters by it and every key that identifies a row starts with it."""
    return Column("connection", String(CONNECTION_MAX), nullable=False, server_default="default")


# SQLite needs INTEGER PRIMARY KEY for rowid autoincrement; PostgreSQL gets BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("flow", String(100), nullable=False),
    Column("kind", String(20), nullable=False),  # outbound | writeback | replay
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False),  # running | succeeded | partial | failed | interrupted
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("counts", JSON, nullable=False, default=dict),
    Column("error", Text),
    connection_column(),
    Index("ix_runs_flow_started", "flow", "started_at"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", String(120), nullable=False),  # "<flow>" or "<flow>:writeback"
    Column("value", String(64)),  # ISO-8601 UTC timestamp
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("run_id", BigInteger),
    connection_column(),
    PrimaryKeyConstraint("connection", "name"),
)

records = Table(
    "records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("flow", String(100), nullable=False),
    Column("ifs_key", String(400), nullable=False),
    # pending_create | pending_update | synced | retry | parked | orphaned
    Column("state", String(20), nullable=False),
    Column("source_hash", String(64)),
    Column("draft_hash", String(64)),
    Column("source_ts", String(64)),
    Column("draft", JSON),  # the mapped issue payload (what we send or would send)
    Column("jira_id", String(40)),
    Column("jira_key", String(40)),
    Column("jira_status", String(100)),  # last status seen in Jira
    Column("jira_status_category", String(20)),  # its category (new, indeterminate, done)
    Column("written_status", String(100)),  # last status written to IFS
    # Order of Jira changes (migration 0004): ``updated`` and changelog id of the newest status accepted.
    Column("jira_updated", DateTime(timezone=True)),
    Column("jira_changelog_id", BigInteger),
    Column("create_attempted_at", DateTime(timezone=True)),  # durable create intent marker
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("error_class", String(60)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Write-back retry state, apart from the outbound side's attempts (migration 0004).
    Column("writeback_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("writeback_next_attempt_at", DateTime(timezone=True)),
    # Why it failed, for grouping (migration 0005): a code from ml_connector.reasons and the value that varies.
    Column("reason", String(60)),
    Column("reason_value", String(300)),
    connection_column(),
    UniqueConstraint("connection", "flow", "ifs_key"),
    Index("ix_records_state", "flow", "state"),
    Index("ix_records_jira_id", "jira_id"),
    Index("ix_records_jira_key", "jira_key"),
    Index("ix_records_updated", "updated_at"),
    # Dashboard keyset pagination and key search without a full scan (migration 0002).
    Index("ix_records_state_id", "state", "id"),
    Index("ix_records_flow_id", "flow", "id"),
    Index("ix_records_ifs_key", "ifs_key"),
    # The failed queue grouped by reason without reading the table (migration 0005).
    Index("ix_records_failure_reason", "state", "flow", "reason", "reason_value"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("record_id", BigInteger, ForeignKey("records.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", BigInteger),
    Column("at", DateTime(timezone=True), nullable=False),
    # fetched mapped created updated skipped conflict written_back failed retried replayed reconciled deleted
    Column("event", String(30), nullable=False),
    Column("outcome", String(20), nullable=False),  # ok | warning | error
    Column("message", Text),
    Column("detail", JSON),  # redacted
    Column("digest", String(64)),  # sha256 of the redacted payload
    connection_column(),
    Index("ix_audit_record", "record_id", "id"),
)

webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("event", String(60), nullable=False),
    Column("issue_id", String(40)),
    Column("payload", JSON, nullable=False),
    Column("processed_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False, default="pending"),  # pending processed ignored stale failed
    Column("error", Text),
    connection_column(),
    UniqueConstraint("connection", "delivery_id"),
    Index("ix_inbox_pending", "status", "id"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("webhook_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("jql", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "webhook_id"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("name", String(120), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),  # Fernet token
    Column("updated_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "name"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(120), nullable=False),  # "scheduler" or "flow:<name>"
    Column("holder", String(200), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "name"),
)

flow_controls = Table(
    "flow_controls",
    metadata,
    Column("flow", String(100), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("sync_requested_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "flow"),
)

jira_users = Table(
    "jira_users",
    metadata,
    Column("email", String(320), nullable=False),  # lower-cased
    Column("account_id", String(128)),  # NULL: looked up, not found
    Column("resolved_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "email"),
)

# Far-side metadata a run's mapping needs (Jira fields, priorities, projects, createmeta), kept across processes so
# a new process need not read it again before its first write (engine/runtime.py). ``source`` names the far side and
# identity it was read from: an entry read from another site or user is not used.
metadata_cache = Table(
    "metadata_cache",
    metadata,
    Column("name", String(200), nullable=False),  # "jira:fields", "createmeta:<project>:<issue type>", ...
    Column("source", String(64), nullable=False),
    Column("value", JSON, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "name"),
)

system_health = Table(
    "system_health",
    metadata,
    Column("system", String(20), nullable=False),  # ifs | jira
    Column("status", String(30), nullable=False),  # operational | unreachable | auth_failed
    Column("reason", Text),
    Column("last_success_at", DateTime(timezone=True)),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    connection_column(),
    PrimaryKeyConstraint("connection", "system"),
)

# Shared rate budgets (``runner.rate_buckets: postgres``, store/buckets.py). Keyed by the far side's identity, not by
# connection: two connections with one IFS client id share one budget, so these tables have no connection column.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key", String(500), primary_key=True),  # "ifs:<token url>:<client id>:requests", "jira:<site>:PUT /..."
    Column("tokens", Float, nullable=False),  # below zero: tokens already promised to waiting callers
    Column("updated_at", DateTime(timezone=True), nullable=False),  # the database clock, never a process's
    # What every process took and waited for, counted by the take itself (/metrics of the run process).
    Column("taken", BigInteger, nullable=False, server_default="0"),
    Column("waited", Float, nullable=False, server_default="0"),
)

rate_holds = Table(
    "rate_holds",
    metadata,
    Column("key", String(500), primary_key=True),  # "jira:<site>:issue:<id>", "jira:<site>:burst:<endpoint>"
    Column("not_before", DateTime(timezone=True), nullable=False),
)

rate_quota = Table(
    "rate_quota",
    metadata,
    Column("key", String(500), primary_key=True),  # "jira:<site>:points"
    Column("remaining", Integer),  # NULL: not known (no answer yet in this window)
    Column("resets_at", DateTime(timezone=True)),
)
