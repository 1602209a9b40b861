"""The state store: one ``Store`` per process, its repositories, and the transaction object.

``store.records.get(...)`` and the other repositories take a connection per call. Work that must be atomic (a page:
record states, audit events and the cursor) goes through ``with store.transaction(run_id) as tx:``, whose
``tx.records``, ``tx.audit`` and ``tx.cursors`` are the same repositories on the transaction's one connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from ml_connector.config.deployment import DEFAULT_CONNECTION
from ml_connector.store.audit import AuditRepository
from ml_connector.store.controls import FlowControlRepository, HealthRepository
from ml_connector.store.credentials import CredentialRepository
from ml_connector.store.cursors import CursorRepository
from ml_connector.store.db import create_db_engine, migrate
from ml_connector.store.inbox import InboxRepository
from ml_connector.store.leases import LeaseRepository
from ml_connector.store.metadata import MetadataCacheRepository
from ml_connector.store.records import RecordRepository
from ml_connector.store.runs import RunRepository
from ml_connector.store.source import EngineSource, TransactionSource
from ml_connector.store.users import UserRepository
from ml_connector.store.webhooks import WebhookRepository


class Tx:
    """One database transaction: what its repositories write commits or rolls back together.

    Audit events and cursors written through it carry ``run_id``.
    """

    def __init__(self, conn: Connection, run_id: int | None, connection: str = DEFAULT_CONNECTION) -> None:
        self.conn = conn
        self.run_id = run_id
        source = TransactionSource(conn, connection)
        self.records = RecordRepository(source)
        self.audit = AuditRepository(source, run_id)
        self.cursors = CursorRepository(source, run_id)


class Store:
    """Durable state of one connector connection; safe to share between threads (each repository call takes its own
    database connection). Stores of other connections may share the database: every row carries its connection."""

    def __init__(self, engine: Engine, connection: str = DEFAULT_CONNECTION) -> None:
        self.engine = engine
        self.connection = connection
        source = EngineSource(engine, connection)
        self.runs = RunRepository(source)
        self.cursors = CursorRepository(source)
        self.records = RecordRepository(source)
        self.audit = AuditRepository(source)
        self.users = UserRepository(source)
        self.metadata = MetadataCacheRepository(source)
        self.inbox = InboxRepository(source)
        self.leases = LeaseRepository(source)
        self.controls = FlowControlRepository(source)
        self.health = HealthRepository(source)
        self.webhooks = WebhookRepository(source)
        self.credentials = CredentialRepository(source)

    @classmethod
    def open(cls, url: str, *, connection: str = DEFAULT_CONNECTION, migrate_schema: bool = True) -> Store:
        engine = create_db_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine, connection)

    def for_connection(self, connection: str) -> Store:
        """A store of another connection on the same engine (one pool for every connection of a process); closing
        either closes the engine of both."""
        return Store(self.engine, connection)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, run_id: int | None = None) -> Iterator[Tx]:
        with self.engine.begin() as conn:
            yield Tx(conn, run_id, self.connection)
