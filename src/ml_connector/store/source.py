"""Where a repository gets its connection: its own per call, or the one of an open transaction."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from operator import itemgetter
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, Executable, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from ml_connector.config.deployment import DEFAULT_CONNECTION

T = TypeVar("T")

CHUNK = 500  # ids per IN (...): stays under SQLite's bound-parameter limit


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class _ManyPlan:
    """A statement as SQLAlchemy compiles it for executemany on one dialect: its SQL, and how a row's values become
    the driver's parameters (in the statement's order, through the bind processors of those that have one)."""

    def __init__(self, sql: str, order: Sequence[str], processors: Mapping[str, Callable[[Any], Any] | None]) -> None:
        self.sql = sql
        self._values = itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],)
        self._processed = [(i, p) for i, name in enumerate(order) if (p := processors.get(name)) is not None]

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The driver's parameters for ``rows``. A column's processor runs once per run of the same object down the
        column: the rows of one write share their timestamps (``now``) and many None values, and a processor (the
        SQLite DATETIME one formats text in Python) depends on the value only."""
        params: list[tuple[Any, ...]] = [self._values(values) for values in rows]
        if not self._processed:
            return params
        columns: list[Sequence[Any]] = list(zip(*params, strict=True))
        for i, process in self._processed:
            columns[i] = _processed(columns[i], process)
        return list(zip(*columns, strict=True))


_UNSET = object()  # no value of a column processed yet


def _processed(column: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] = []
    last_in: Any = _UNSET
    last_out: Any = None
    for value in column:
        if value is not last_in:
            last_in, last_out = value, process(value)
        out.append(last_out)
    return out


PLANS_KEPT = 64
_plans: weakref.WeakKeyDictionary[Dialect, dict[tuple[Executable, tuple[str, ...]], _ManyPlan | None]]
_plans = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()


def execute_many(conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(statement, rows)`` for rows that all have the same keys (none: nothing is executed).

    On SQLite the rows go to the driver's executemany with the SQL and the bind processors SQLAlchemy compiles for
    the statement, but without its per-row parameter handling, which on a backfill cost about a tenth of the
    connector's CPU (five rows per record). Another dialect, or a statement that needs more per row (Python-side
    column defaults, expanding parameters), takes SQLAlchemy's own path. The compiled form is kept per statement
    object: pass the same object for the same kind of write (a module constant), not a new one per call."""
    if not rows:
        return
    plan = _many_plan(conn.dialect, statement, tuple(rows[0])) if conn.dialect.name == "sqlite" else None
    if plan is None:
        conn.execute(statement, list(rows))
        return
    conn.exec_driver_sql(plan.sql, plan.rows(rows))


def _many_plan(dialect: Dialect, statement: Executable, keys: tuple[str, ...]) -> _ManyPlan | None:
    with _plans_lock:
        known = _plans.setdefault(dialect, {})
        if len(known) > PLANS_KEPT:  # a caller building a new statement per call: keep memory bounded
            known.clear()
        if (statement, keys) not in known:
            known[(statement, keys)] = _compile_many(dialect, statement, keys)
        return known[(statement, keys)]


def _compile_many(dialect: Dialect, statement: Executable, keys: tuple[str, ...]) -> _ManyPlan | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)  # type: ignore[attr-defined]
    if not isinstance(compiled, SQLCompiler) or not compiled.positional or compiled.positiontup is None:
        return None
    needs_more = compiled.insert_prefetch or compiled.update_prefetch or compiled.post_compile_params
    if needs_more or compiled.literal_execute_params or set(compiled.positiontup) != set(keys):
        return None  # (keys the statement does not use: SQLAlchemy says what it does with them)
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
    }
    return _ManyPlan(compiled.string, compiled.positiontup, processors)


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
