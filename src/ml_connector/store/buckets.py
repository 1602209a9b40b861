"""Rate budgets shared by every process through PostgreSQL (``runner.rate_buckets: postgres``).

Every step is one statement on an autocommit connection, so one round trip: the row lock of an ``INSERT ... ON
CONFLICT DO UPDATE`` serialises concurrent takers and the refill is computed from the database clock
(``clock_timestamp()``, read after the lock is held), so processes on machines with skewed clocks agree. The
arithmetic is ``http.buckets.refill``'s; ``tests/integration/store/test_buckets.py`` holds the two side by side.

The connections are the buckets' own (a small pool, no pre-ping round trip, no disk flush per commit): a take never
waits for a connection a long store transaction holds, nor for the disk. One such pool per database and process
(``acquire_engine``), whatever the number of connections the process serves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from ml_connector.errors import ConfigError, Unavailable
from ml_connector.http.buckets import Taken, wait_for
from ml_connector.http.pacing import QuotaGauge, next_utc_hour, reset_slack
from ml_connector.http.ratelimit import QuotaReading

POOL_SIZE = 2
POOL_OVERFLOW = 8  # threads of one process taking at once beyond the pool: short-lived extra connections

# Holds first: while one is on, nothing is taken (the row is not even locked) and the caller learns for how long.
# The take also counts itself and the wait it promised (``taken``, ``waited``: every process's budget use, read by
# /metrics); the SET list sees the old row, so the refill is written out twice.
_TAKE = text(
    """
    WITH held AS (
        SELECT CAST(EXTRACT(EPOCH FROM MAX(not_before) - clock_timestamp()) AS float8) AS seconds
        FROM rate_holds WHERE key = ANY(:holds)
    ), taken AS (
        INSERT INTO rate_buckets AS b (key, tokens, updated_at, taken, waited)
        SELECT :key, CAST(:capacity AS float8) - 1, clock_timestamp(), 1, 0
        WHERE COALESCE((SELECT seconds FROM held), 0) <= 0
        ON CONFLICT (key) DO UPDATE SET
            tokens = LEAST(
                CAST(:capacity AS float8),
                b.tokens + CAST(:rate AS float8)
                    * GREATEST(0, CAST(EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) AS float8))
            ) - 1,
            updated_at = GREATEST(b.updated_at, clock_timestamp()),
            taken = b.taken + 1,
            waited = b.waited + GREATEST(0, 1 - LEAST(
                CAST(:capacity AS float8),
                b.tokens + CAST(:rate AS float8)
                    * GREATEST(0, CAST(EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) AS float8))
            )) / CAST(:rate AS float8)
        RETURNING tokens
    )
    SELECT (SELECT seconds FROM held), (SELECT tokens FROM taken)
    """
)
_HOLD = text(
    """
    INSERT INTO rate_holds AS h (key, not_before)
    VALUES (:key, clock_timestamp() + make_interval(secs => :seconds))
    ON CONFLICT (key) DO UPDATE SET not_before = GREATEST(h.not_before, EXCLUDED.not_before)
    """
)
_HELD = text(
    "SELECT CAST(EXTRACT(EPOCH FROM MAX(not_before) - clock_timestamp()) AS float8) FROM rate_holds "
    "WHERE key = ANY(:keys)"
)
_USE = text(
    "SELECT s.scope, substr(b.key, length(s.scope) + 2), b.taken, b.waited "
    "FROM rate_buckets b JOIN unnest(CAST(:scopes AS text[])) AS s(scope) ON starts_with(b.key, s.scope || ':') "
    "ORDER BY 1, 2"
)
_FORGET_HOLDS = text("DELETE FROM rate_holds WHERE not_before < clock_timestamp() - interval '1 hour'")
FORGET_EVERY = 500  # holds set between two sweeps of long-expired ones (one per throttled issue would pile up)


def shared_engine(store_engine: Engine, path: str = "runner.rate_buckets") -> Engine:
    """The buckets' own engine on the store's database; ``ConfigError`` naming ``path`` unless it is PostgreSQL."""
    if store_engine.dialect.name != "postgresql":
        raise ConfigError(
            f"postgres needs a PostgreSQL store (store.url), this store is {store_engine.dialect.name}", path=path
        )
    return create_engine(
        store_engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        # A take lost in a database crash costs one token: not worth a disk flush per request (the tables are
        # UNLOGGED too; this also covers a database whose tables were created otherwise).
        connect_args={"options": "-c synchronous_commit=off"},
    )


_ENGINES: dict[str, tuple[Engine, int]] = {}  # store URL -> (the buckets' engine, connectors using it)
_ENGINES_LOCK = threading.Lock()


def _url_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def acquire_engine(store_engine: Engine, path: str = "runner.rate_buckets") -> Engine:
    """The buckets' engine of this process for the store's database, built by the first connector to ask: a process
    serving many connections on one database keeps one small pool for them all, not one per connection."""
    key = _url_key(store_engine)
    with _ENGINES_LOCK:
        engine, users = _ENGINES.get(key) or (shared_engine(store_engine, path), 0)
        _ENGINES[key] = (engine, users + 1)
    return engine


def release_engine(engine: Engine) -> None:
    """A connector is done with ``engine`` (``acquire_engine``'s): the last one to let go closes its pool."""
    key = _url_key(engine)
    with _ENGINES_LOCK:
        held = _ENGINES.get(key)
        if held is None or held[0] is not engine:
            last = True  # not one of ours (or already let go by everyone): close it
        else:
            last = held[1] <= 1
            if last:
                del _ENGINES[key]
            else:
                _ENGINES[key] = (engine, held[1] - 1)
    if last:
        engine.dispose()


class SharedStep:
    """Runs one statement on the buckets' engine; a database that cannot be reached means the call is not sent."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise Unavailable(
                f"the shared rate budget in PostgreSQL cannot be read ({type(exc.orig).__name__}); not sent",
                system="store",
                not_sent=True,
            ) from None

    def scalar(self, statement: Any, **params: Any) -> Any:
        with self.connection() as conn:
            return conn.execute(statement, params).scalar()

    def run(self, statement: Any, **params: Any) -> None:
        with self.connection() as conn:
            conn.execute(statement, params)


def bucket_use(engine: Engine, scopes: list[str]) -> list[tuple[str, str, int, float]]:
    """(scope, the key under it, tokens taken, seconds waited) of every bucket under ``scopes``, by every process."""
    with SharedStep(engine).connection() as conn:
        rows = conn.execute(_USE, {"scopes": scopes}).all()
    return [(str(r[0]), str(r[1]), int(r[2]), float(r[3])) for r in rows]


class PostgresBuckets:
    """``http.buckets.Buckets`` in the ``rate_buckets`` and ``rate_holds`` tables."""

    def __init__(self, engine: Engine) -> None:
        self._db = SharedStep(engine)
        self._holds = 0

    def take(self, key: str, rate: float, capacity: float, holds: tuple[str, ...] = ()) -> Taken:
        params = {"key": key, "rate": rate, "capacity": capacity, "holds": list(holds)}
        with self._db.connection() as conn:
            row = conn.execute(_TAKE, params).one()
        held: float | None = row[0]
        left: float | None = row[1]
        if left is None:  # a hold is on: nothing was taken
            return Taken(held=float(held or 0.0))
        return Taken(wait=wait_for(float(left), rate))

    def hold(self, key: str, seconds: float) -> None:
        with self._db.connection() as conn:
            conn.execute(_HOLD, {"key": key, "seconds": max(0.0, seconds)})
            self._holds += 1
            if self._holds % FORGET_EVERY == 0:
                conn.execute(_FORGET_HOLDS)

    def held_for(self, keys: tuple[str, ...]) -> float:
        left = self._db.scalar(_HELD, keys=list(keys))
        return max(0.0, float(left)) if left is not None else 0.0


_QUOTA_TAKE = text(
    """
    UPDATE rate_quota SET
        remaining = CASE WHEN resets_at <= clock_timestamp() THEN NULL ELSE remaining - 1 END,
        resets_at = CASE WHEN resets_at <= clock_timestamp() THEN NULL ELSE resets_at END
    WHERE key = :key AND (remaining IS NULL OR remaining > 0 OR resets_at <= clock_timestamp())
    RETURNING 1
    """
)
_QUOTA_WAIT = text(
    "SELECT remaining, CAST(EXTRACT(EPOCH FROM resets_at - clock_timestamp()) AS float8) FROM rate_quota "
    "WHERE key = :key"
)
_QUOTA_LEFT = text(
    "SELECT remaining FROM rate_quota WHERE key = :key AND (resets_at IS NULL OR resets_at > clock_timestamp())"
)
# An answer can only lower the count within a window; one of a later window (or after the reset) replaces it. Reset
# times of one window differ by rounding and by how long an answer waited: ``slack`` seconds still name one window.
_QUOTA_OBSERVE = text(
    """
    INSERT INTO rate_quota AS q (key, remaining, resets_at)
    VALUES (:key, :remaining, clock_timestamp() + make_interval(secs => CAST(:reset_in AS float8)))
    ON CONFLICT (key) DO UPDATE SET
        remaining = CASE
            WHEN q.remaining IS NULL OR q.resets_at <= clock_timestamp()
                OR EXCLUDED.resets_at > q.resets_at + make_interval(secs => CAST(:slack AS float8))
            THEN EXCLUDED.remaining
            ELSE LEAST(q.remaining, EXCLUDED.remaining) END,
        resets_at = CASE
            WHEN EXCLUDED.resets_at > q.resets_at + make_interval(secs => CAST(:slack AS float8))
            THEN EXCLUDED.resets_at
            ELSE COALESCE(GREATEST(q.resets_at, EXCLUDED.resets_at), q.resets_at) END
    """
)


class SharedQuota:
    """Jira's points quota (OAuth apps) counted down by every process: a row per app and site.

    This process's ``QuotaGauge`` still estimates the points its own answers show spent (the run's report); the
    shared row decides whether a call may go out. A call takes a point from the row before it is sent, every answer
    lowers the row to what Jira says is left, and at zero every process waits for the window's reset."""

    def __init__(
        self, engine: Engine, key: str, *, local: QuotaGauge | None = None, wall: Callable[[], float] = time.time
    ) -> None:
        self._db = SharedStep(engine)
        self._key = key
        self._local = local or QuotaGauge()
        self._wall = wall

    @property
    def limit(self) -> int | None:
        return self._local.limit

    def wait_needed(self) -> float:
        with self._db.connection() as conn:
            return max(self._local.wait_needed(), self._shared_wait(conn))

    def acquire(self) -> float:
        with self._db.connection() as conn:
            taken = conn.execute(_QUOTA_TAKE, {"key": self._key}).scalar() is not None
            if not taken and (wait := self._shared_wait(conn)) > 0:
                return wait
        return self._local.acquire()

    def points_left(self) -> int | None:
        """The points every process has left in this window (None: not known, or the window has reset)."""
        left = self._db.scalar(_QUOTA_LEFT, key=self._key)
        return None if left is None else int(left)

    def _shared_wait(self, conn: Connection) -> float:
        row = conn.execute(_QUOTA_WAIT, {"key": self._key}).first()
        if row is None or row[0] is None or row[0] > 0:
            return 0.0
        if row[1] is None:
            return next_utc_hour(self._wall())  # spent, and no answer said when it resets: the top of the hour
        return max(0.0, float(row[1]))

    def release(self) -> None:
        self._local.release()

    def observe(self, reading: QuotaReading) -> int:
        spent = self._local.observe(reading)
        if reading.remaining is not None:
            self._db.run(
                _QUOTA_OBSERVE,
                key=self._key,
                remaining=reading.remaining - self._local.in_flight,  # this process's calls still out (see QuotaGauge)
                reset_in=reading.reset_in,
                slack=reset_slack(reading.window),
            )
        return spent
