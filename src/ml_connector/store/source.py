"""Where a repository gets its connection: its own per call, or the one of an open transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, Table

from ml_connector.config.deployment import DEFAULT_CONNECTION

T = TypeVar("T")

CHUNK = 500  # ids per IN (...): stays under SQLite's bound-parameter limit


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class ConnectionSource(Protocol):
    connection: str  # the connector connection (IFS tenant + Jira site) every query is scoped to

    def reading(self) -> AbstractContextManager[Connection]: ...
    def writing(self) -> AbstractContextManager[Connection]: ...


class EngineSource:
    """A connection per call: a read sees committed data, a write is its own short transaction."""

    def __init__(self, engine: Engine, connection: str = DEFAULT_CONNECTION) -> None:
        self.engine = engine
        self.connection = connection

    def reading(self) -> AbstractContextManager[Connection]:
        return self.engine.connect()

    def writing(self) -> AbstractContextManager[Connection]:
        return self.engine.begin()


class TransactionSource:
    """Every call on one open transaction's connection; committing or rolling back is the transaction's job."""

    def __init__(self, conn: Connection, connection: str = DEFAULT_CONNECTION) -> None:
        self.conn = conn
        self.connection = connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        yield self.conn

    def writing(self) -> AbstractContextManager[Connection]:
        return self.reading()


class Repository:
    """Base of every repository: the source its queries run on, and the connection every row it reads or writes
    belongs to (one store holds many connections; no query may see another's rows)."""

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source
        self.connection = source.connection

    def _mine(self, table: Table) -> ColumnElement[bool]:
        """The condition every query on ``table`` carries: rows of this repository's connection only."""
        return table.c.connection == self.connection
