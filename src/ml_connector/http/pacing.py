"""Client-side pacing: a token bucket per host, and deferrals per key (an endpoint class or one issue)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ml_connector.errors import Unavailable


def pause(seconds: float, stop: threading.Event | None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep ``seconds``; with ``stop``, end the wait as soon as it is set and raise ``Unavailable`` marked not sent,
    so a process shutting down never sits out a backoff or a Retry-After before a request it would then send."""
    if stop is None:
        sleep(seconds)
    elif stop.wait(seconds):
        raise Unavailable(f"shutting down: not sent (it was waiting {seconds:.1f} s for a rate limit)", not_sent=True)


class TokenBucket:
    """Classic token bucket; ``acquire`` blocks until a token is available."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate_per_second
        self.capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take a token, possibly going negative; returns how long the caller must wait for it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, stop: threading.Event | None = None) -> float:
        wait = self._reserve()
        if wait > 0:
            pause(wait, stop, self._sleep)
        return wait


class Pacer:
    """Paces requests per host and holds back keys (``burst:<endpoint>``, ``issue:<id>``) the server throttled."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None,
        burst: int = 10,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rpm = requests_per_minute
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._not_before: dict[str, float] = {}
        self._lock = threading.Lock()

    def _bucket(self, host: str) -> TokenBucket | None:
        if self._rpm is None:
            return None
        with self._lock:
            bucket = self._buckets.get(host)
            if bucket is None:
                bucket = TokenBucket(self._rpm / 60.0, self._burst, clock=self._clock, sleep=self._sleep)
                self._buckets[host] = bucket
            return bucket

    def defer(self, key: str, seconds: float) -> None:
        """Hold ``key`` back for ``seconds`` (never shortening an existing deferral)."""
        until = self._clock() + seconds
        with self._lock:
            self._not_before[key] = max(self._not_before.get(key, 0.0), until)

    def deferred_for(self, keys: tuple[str, ...]) -> float:
        """Seconds until no key in ``keys`` is deferred any more (0 when none is)."""
        with self._lock:
            deadline = max((self._not_before.get(k, 0.0) for k in keys), default=0.0)
        return max(0.0, deadline - self._clock())

    def wait(self, host: str, keys: tuple[str, ...] = (), *, stop: threading.Event | None = None) -> float:
        """Block until ``host`` has a token and no key in ``keys`` is deferred; returns the time waited.

        A set ``stop`` cuts any wait short with ``Unavailable`` (not sent); a request that needs no wait goes out."""
        waited = 0.0
        delay = self.deferred_for(keys)
        if delay > 0:
            pause(delay, stop, self._sleep)
            waited += delay
        bucket = self._bucket(host)
        if bucket is not None:
            waited += bucket.acquire(stop)
        return waited
