"""Where token buckets and 429 holds live: in this process (``LocalBuckets``, the default) or in a table every
process shares (``ml_connector.store.buckets.PostgresBuckets``, ``runner.rate_buckets: postgres``).

A bucket is named by the far side's identity (:func:`ifs_scope`, :func:`jira_scope`), never by the process, so two
processes, or two connections with the same IFS client id, draw on one budget.

Taking a token is a reservation: the count may go below zero and the taker is told how long to wait for its token.
One step, so concurrent takers queue up behind each other instead of all waking at the same refill. The arithmetic
is :func:`refill`; the PostgreSQL statement computes the same from the database clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


def refill(tokens: float, elapsed: float, rate: float, capacity: float) -> float:
    """Tokens after ``elapsed`` seconds at ``rate`` per second, at most ``capacity`` (a clock step back adds none)."""
    return min(capacity, tokens + max(0.0, elapsed) * rate)


def wait_for(tokens_after_take: float, rate: float) -> float:
    """Seconds until a token taken leaving ``tokens_after_take`` is really there (0 when it already was)."""
    return 0.0 if tokens_after_take >= 0 else -tokens_after_take / rate


def ifs_scope(token_url: str, client_id: str) -> str:
    """IFS counts requests per client id of one IAM realm."""
    return f"ifs:{token_url}:{client_id}"


def jira_scope(site_url: str) -> str:
    """Jira's burst limits are per site (tenant x endpoint x method), the points quota per app and site."""
    return f"jira:{site_url.rstrip('/')}"


class Buckets(Protocol):
    """Token buckets and holds by key; thread-safe."""

    def take(self, key: str, rate: float, capacity: float, holds: tuple[str, ...] = ()) -> Taken:
        """Take one token of bucket ``key`` (created full) unless a key in ``holds`` is held: then take nothing and
        say for how long (the caller waits and asks again: a token taken during a hold would be spent in a burst
        when it ends). One step, so a shared store needs one round trip for both."""
        ...

    def hold(self, key: str, seconds: float) -> None:
        """Hold ``key`` back for ``seconds`` from now (never shortening an existing hold)."""
        ...

    def held_for(self, keys: tuple[str, ...]) -> float:
        """Seconds until no key in ``keys`` is held any more (0 when none is)."""
        ...


@dataclass(frozen=True)
class Taken:
    """The outcome of a take: ``held`` seconds left of a hold (nothing taken), else ``wait`` for the token taken."""

    wait: float = 0.0
    held: float = 0.0


class LocalBuckets:
    """Buckets and holds of this process only."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._not_before: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, capacity: float, holds: tuple[str, ...] = ()) -> Taken:
        with self._lock:
            now = self._clock()
            held = max((self._not_before.get(k, 0.0) for k in holds), default=0.0) - now
            if held > 0:
                return Taken(held=held)
            tokens, updated = self._tokens.get(key, (capacity, now))
            left = refill(tokens, now - updated, rate, capacity) - 1.0
            self._tokens[key] = (left, now)
        return Taken(wait=wait_for(left, rate))

    def hold(self, key: str, seconds: float) -> None:
        until = self._clock() + seconds
        with self._lock:
            self._not_before[key] = max(self._not_before.get(key, 0.0), until)

    def held_for(self, keys: tuple[str, ...]) -> float:
        with self._lock:
            deadline = max((self._not_before.get(k, 0.0) for k in keys), default=0.0)
        return max(0.0, deadline - self._clock())
