"""State store (SQLAlchemy 2 Core; SQLite in WAL mode by default, PostgreSQL through psycopg 3)."""

from ml_connector.store.db import KnownTexts, safe_json
from ml_connector.store.rows import (
    FAILED_STATES,
    ORPHANED,
    PARKED,
    PENDING_CREATE,
    PENDING_UPDATE,
    RECORD_STATES,
    RETRY,
    SYNCED,
    AuditEvent,
    AuditRow,
    FailureGroup,
    RecordRow,
    RunRow,
    utcnow,
)
from ml_connector.store.store import Store, Tx

__all__ = [
    "FAILED_STATES",
    "ORPHANED",
    "PARKED",
    "PENDING_CREATE",
    "PENDING_UPDATE",
    "RECORD_STATES",
    "RETRY",
    "SYNCED",
    "AuditEvent",
    "AuditRow",
    "FailureGroup",
    "KnownTexts",
    "RecordRow",
    "RunRow",
    "Store",
    "Tx",
    "safe_json",
    "utcnow",
]
