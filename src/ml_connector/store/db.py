"""Engine creation and automatic migrations for SQLite (WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from ml_connector.errors import ConfigError
from ml_connector.jsonbody import compact_json

MIGRATIONS = Path(__file__).parent / "migrations"
POSTGRES_EXTRA_FIX = "pip install 'ml-connector[postgres]'"
# PostgreSQL connections per process: the daemon's flow threads, the web app and the inbox worker share them.
POOL_SIZE = 5
POOL_OVERFLOW = 5


def json_safe(value: Any) -> Any:
    """The one encoder for everything the store writes as JSON (audit details, drafts, payloads, run counts).

    Datetimes become ISO-8601 UTC (a naive one is taken as UTC), Decimals exact strings, bytes base64, sets sorted
    lists, enums their value, pydantic models and dataclasses their fields; anything else its ``str``. Strings lose
    NUL and lone surrogates and floats lose NaN/infinity, which PostgreSQL's JSON type refuses.
    """
    # Exact types first: drafts and audit details are plain dicts, lists and text, and this runs for every record.
    kind = type(value)
    if kind is str:
        return value if _plain(value) else clean_text(value)
    if kind is dict:
        return {
            (k if type(k) is str and _plain(k) else _key(k)): (
                v if type(v) is str and _plain(v) else None if v is None else json_safe(v)
            )
            for k, v in value.items()
        }
    if kind is list:
        return [json_safe(v) for v in value]
    if kind is SafeJson:
        return value  # made safe before (a draft shared by its record row and its audit event)
    return _generic(value)


def _plain(text: str) -> bool:
    """Text ``clean_text`` leaves as it is, found without encoding it (ASCII has no surrogates)."""
    return text.isascii() and "\x00" not in text


def _generic(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [json_safe(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, BaseModel):
        return json_safe(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Decimal | UUID):
        return str(value)
    return clean_text(str(value))


def _key(key: Any) -> str:
    safe = json_safe(key)
    return safe if isinstance(safe, str) else json.dumps(safe, sort_keys=True)


def clean_text(text: str) -> str:
    """Text PostgreSQL accepts in a text or JSON column: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (json.loads lets them through from a far side's answer)
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class SafeJson(dict[str, Any]):
    """A JSON object already through ``json_safe`` (never change one): ``json_safe`` and ``json_dumps`` take it as
    it is instead of walking it again."""


def safe_json(value: Mapping[str, Any]) -> SafeJson:
    """``value`` through ``json_safe`` once, for a caller that encodes it more than once (a digest and a column)."""
    return SafeJson(json_safe(value))


class KnownTexts(dict[str, Any]):
    """A JSON object (an audit detail) with the texts of some of its values known already, each as
    ``json_dumps(value, sort_keys=True)`` writes it (a draft's, from its content hash): the audit composes the
    detail's text from them instead of encoding those values again."""

    def __init__(self, value: Mapping[str, Any], texts: Mapping[str, str]) -> None:
        super().__init__(value)
        self.texts = dict(texts)


class JsonText(str):
    """JSON text ``json_dumps`` made before (an audit detail, encoded once for its digest and its column): the
    column's serializer writes it as it is."""


def json_dumps(value: Any, *, sort_keys: bool = False) -> str:
    """``json_serializer`` of the engine: every JSON column goes through ``json_safe``."""
    kind = type(value)
    if kind is JsonText:
        return str(value)
    safe = value if kind is SafeJson else json_safe(value)
    if sort_keys:  # text that is digested (audit details): the standard library's form, which the digest defines
        return _SORTED.encode(safe)
    return compact_json(safe, finite=True).decode("utf-8")  # a column read back as a value: its form is free


# What json.dumps(..., sort_keys=True, allow_nan=False) builds on every call (it reuses an encoder only for defaults).
_SORTED = json.JSONEncoder(sort_keys=True, allow_nan=False)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` DSNs and route them to psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def require_driver(url: str) -> None:
    """A PostgreSQL store needs psycopg, an optional extra: name the fix instead of failing with an ImportError."""
    if normalise_url(url).startswith("postgresql") and importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            f"a PostgreSQL store needs psycopg, which is not installed; install it with {POSTGRES_EXTRA_FIX}",
            path="store.url",
        )


def create_db_engine(url: str) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {url.split('@')[-1]!r}", path="store.url") from None
    require_driver(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # A file keeps POOL_SIZE connections open between calls: a connection per call cost a reopen and, as the
        # last one closed, a WAL checkpoint per transaction (most of a page's store CPU). Overflow is unbounded, as
        # with no pool. An in-memory database is one per connection, pooled or not.
        pooled = bool(database) and database != ":memory:"
        pool: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": -1} if pooled else {"poolclass": NullPool}
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=json_dumps,
            **pool,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process crashes
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, json_serializer=json_dumps
        )
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql", path="store.url")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start and from several processes."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Running upgrade ..." is noise on every start
    cfg = alembic_config()
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations copy tables; with foreign keys on, dropping the old records table would delete
                # every audit event (ON DELETE CASCADE). The pragma only takes effect outside a transaction.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        # Serialise concurrent migrators (several workers starting at once).
                        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(720202601)")
                    cfg.attributes["connection"] = connection
                    command.upgrade(cfg, "head")
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()
    except OperationalError as exc:
        raise ConfigError(f"cannot open the store: {exc.orig}", path="store.url") from None
    except CommandError as exc:
        # Typically an older ml-connector meeting a schema a newer one migrated: never downgrade silently.
        raise ConfigError(
            f"the store's schema is not one this version knows ({exc}); run the newer ml-connector "
            "or restore a backup taken before the upgrade",
            path="store.url",
        ) from None
