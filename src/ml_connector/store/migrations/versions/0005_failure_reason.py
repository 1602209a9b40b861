"""A failed record's reason as a stable code plus the value that varies (``ml_connector.reasons``).

Summaries, ``status``, the dashboard's failed queue and ``/metrics`` group failed records by it in one query.
Existing failed rows get a code read from their message (the texts below are the ones earlier versions wrote);
a message matching none of them gets ``other``. The patterns are frozen here on purpose: later changes to the
messages must not change what this migration did.

Revision ID: 0005
Revises: 0004
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_VALUE_MAX = 300
_PATTERNS: list[tuple[re.Pattern[str], str, str | None]] = [
    # (pattern on last_error, code, how to build the value: None, "1" (group 1) or "field" (group 1 = group 2))
    (re.compile(r"no project mapped for \S+='(.*)' and no default"), "unmapped_project", "1"),
    (re.compile(r"no priority mapped for \S+='(.*)' and no default"), "unmapped_priority", "1"),
    (re.compile(r"no (.+?) mapped for \S+='(.*)' and no default"), "unmapped_option", "field"),
    (re.compile(r"Jira project '(.*)' does not exist or is not visible"), "unknown_project", "1"),
    (re.compile(r"priority '(.*)' does not exist in Jira"), "unknown_priority", "1"),
    (re.compile(r"'(.*)' is not an allowed value of Jira field '(.*)'"), "option_not_allowed", "field"),
    (re.compile(r"Jira field '(.*)' is not known"), "unknown_field", "1"),
    (re.compile(r"record has a blank"), "blank_key", None),
    (re.compile(r"summary is empty after mapping"), "empty_summary", None),
    (re.compile(r"summary is \d+ characters"), "summary_too_long", None),
    (re.compile(r"template '(.*)' (cannot render|was refused)"), "template_error", "1"),
    (re.compile(r"no longer in IFS"), "source_gone", None),
]
_BY_CLASS = {
    "RateLimited": "rate_limited",
    "Unavailable": "unavailable",
    "MalformedResponse": "malformed_response",
    "ConcurrencyConflict": "conflict",
    "NotFound": "not_found",
    "AuthError": "permission_denied",
    "InternalError": "internal_error",
    "MappingError": "mapping_other",
}


def classify(error_class: str | None, message: str | None) -> tuple[str, str | None]:
    """The code and value for a stored failure, from its text where a known message matches, else its class."""
    text = message or ""
    for pattern, code, build in _PATTERNS:
        found = pattern.search(text)
        if found is None:
            continue
        if build == "1":
            return code, found.group(1)[:_VALUE_MAX]
        if build == "field":
            # "no <field> mapped for ...='<value>'" and "'<value>' is not an allowed value of ... '<field>'"
            field, value = (found.group(1), found.group(2)) if code == "unmapped_option" else found.group(2, 1)
            return code, f"{field}={value}"[:_VALUE_MAX]
        return code, None
    if error_class == "Rejected":
        return ("ifs_rejected" if "write-back" in text or text.startswith("ifs") else "jira_rejected"), None
    return _BY_CLASS.get(error_class or "", "other"), None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("reason_value", sa.String(length=_VALUE_MAX), nullable=True))
        batch_op.create_index("ix_records_failure_reason", ["state", "flow", "reason", "reason_value"], unique=False)
    records = sa.table(
        "records",
        sa.column("id", sa.BigInteger),
        sa.column("error_class", sa.String),
        sa.column("last_error", sa.Text),
        sa.column("reason", sa.String),
        sa.column("reason_value", sa.String),
    )
    conn = op.get_bind()
    # One pass over rows that carry a failure (the failed queue; small next to the table), one executemany back.
    failed = conn.execute(
        sa.select(records.c.id, records.c.error_class, records.c.last_error).where(
            sa.or_(records.c.error_class.is_not(None), records.c.last_error.is_not(None))
        )
    ).all()
    values = [{"p_id": row[0], "p_reason": c, "p_value": v} for row in failed for c, v in [classify(row[1], row[2])]]
    if values:
        conn.execute(
            records.update()
            .where(records.c.id == sa.bindparam("p_id"))
            .values(reason=sa.bindparam("p_reason"), reason_value=sa.bindparam("p_value")),
            values,
        )


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_failure_reason")
        batch_op.drop_column("reason_value")
        batch_op.drop_column("reason")
