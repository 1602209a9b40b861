"""Client-side pacing: token buckets per far side and endpoint (``http/buckets.py``), deferrals per key (an endpoint
class or one issue), and the gauge of Jira's hourly points quota (jira-api.md §9: no gradual throttling, so spend
freely and pause at zero until the reset).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol, runtime_checkable

from ml_connector.errors import Unavailable
from ml_connector.http.buckets import Buckets, LocalBuckets
from ml_connector.http.ratelimit import QuotaReading

BURST_SHARE = 0.9  # of the far side's one-second burst bucket that the client's per-endpoint bucket holds

# What a pacer reports per step (``BudgetObserver``): a bounded set, never a key (keys name endpoints and issues).
REQUESTS, ENDPOINT, HOLD, POINTS = "requests", "endpoint", "hold", "points"


@runtime_checkable
class BudgetObserver(Protocol):
    """Receives the budget a call used: ``tokens`` taken (0 for a wait on a hold) and the seconds ``waited`` for
    them, by system and key class (``requests``: the far side's budget, ``endpoint``: a burst bucket, ``hold``: a 429
    hold of an endpoint or issue, ``points``: Jira's hourly points quota)."""

    def on_budget(self, system: str, key_class: str, tokens: int, waited: float) -> None: ...


def pause(seconds: float, stop: threading.Event | None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep ``seconds``; with ``stop``, end the wait as soon as it is set and raise ``Unavailable`` marked not sent,
    so a process shutting down never sits out a backoff or a Retry-After before a request it would then send."""
    if stop is None:
        sleep(seconds)
    elif stop.wait(seconds):
        raise Unavailable(f"shutting down: not sent (it was waiting {seconds:.1f} s for a rate limit)", not_sent=True)


class Pacer:
    """Paces requests per far side and holds back keys (``burst:<endpoint>``, ``issue:<id>``) the server throttled.

    Buckets and holds live in ``buckets`` (this process's by default; shared through PostgreSQL with
    ``runner.rate_buckets: postgres``) under keys that start with ``scope``, the far side's identity."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None,
        burst: int = 10,
        method_rates: Mapping[str, float] | None = None,
        scope: str | None = None,
        buckets: Buckets | None = None,
        quota: Quota | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rpm = requests_per_minute
        self._burst = burst
        self._method_rates = {m.upper(): r for m, r in (method_rates or {}).items()}
        self._scope = scope
        self._sleep = sleep
        self.buckets: Buckets = buckets if buckets is not None else LocalBuckets(clock=clock)
        self.quota: Quota = quota if quota is not None else QuotaGauge(clock=clock)
        self._observers: list[tuple[str, BudgetObserver]] = []

    def watch(self, system: str, observer: BudgetObserver) -> None:
        """Report every take and wait of this pacer to ``observer`` as ``system`` (the session's metrics)."""
        self._observers.append((system, observer))

    def report(self, key_class: str, tokens: int, waited: float) -> None:
        for system, observer in self._observers:
            observer.on_budget(system, key_class, tokens, waited)

    def _key(self, key: str, host: str = "") -> str:
        """A bucket or hold key under the far side's identity (the host when no scope was given: one pacer serves
        one session, so its holds need no prefix)."""
        prefix = self._scope or host
        return f"{prefix}:{key}" if prefix else key

    def endpoint_burst(self, method: str) -> int | None:
        """How many calls of one endpoint of ``method`` may go out at once (None: the method is not paced).

        The far side's bucket holds one second's worth (jira-api.md §9: a token bucket per second). The client's
        holds ``BURST_SHARE`` of it: the rest is slack for requests that arrive closer together than they were sent
        (up to a tenth of a second of jitter at any rate). A hundred edits then need 1.1 s instead of 1.5 s at half a
        second's worth, and a 429 still slows the endpoint down (``defer``, the adaptive in-flight limit)."""
        rate = self._method_rates.get(method.upper())
        return None if rate is None else max(1, int(rate * BURST_SHARE))

    def _take(
        self, key: str, rate: float, capacity: float, holds: tuple[str, ...], stop: threading.Event | None
    ) -> float:
        """Take a token once no key in ``holds`` is held (asked again after each hold); the time waited."""
        waited = 0.0
        while True:
            taken = self.buckets.take(key, rate, capacity, holds)
            delay = taken.held or taken.wait
            if delay > 0:
                pause(delay, stop, self._sleep)
                waited += delay
            if not taken.held:
                return waited

    def _endpoint_rate(self, method: str) -> tuple[float, float] | None:
        """The far side's burst rate of one endpoint (method + path template), mirrored client-side, and the client
        bucket's capacity (``endpoint_burst``)."""
        burst = self.endpoint_burst(method)
        return None if burst is None else (self._method_rates[method.upper()], float(burst))

    def defer(self, key: str, seconds: float) -> None:
        """Hold ``key`` back for ``seconds`` (never shortening an existing deferral)."""
        self.buckets.hold(self._key(key), seconds)

    def deferred_for(self, keys: tuple[str, ...]) -> float:
        """Seconds until no key in ``keys`` is deferred any more (0 when none is)."""
        if not keys:
            return 0.0
        return self.buckets.held_for(tuple(self._key(k) for k in keys))

    def wait(
        self,
        host: str,
        keys: tuple[str, ...] = (),
        *,
        stop: threading.Event | None = None,
        endpoint: tuple[str, str] | None = None,
    ) -> float:
        """Block until ``host`` (and ``endpoint``, (method, path template), under ``method_rates``) has a token and
        no key in ``keys`` is deferred; returns the time waited.

        A set ``stop`` cuts any wait short with ``Unavailable`` (not sent); a request that needs no wait goes out."""
        waited = 0.0
        holds = tuple(self._key(k) for k in keys)
        steps = []
        if self._rpm is not None:
            steps.append((REQUESTS, self._key("requests", host), self._rpm / 60.0, float(self._burst)))
        pacing = self._endpoint_rate(endpoint[0]) if endpoint is not None else None
        if endpoint is not None and pacing is not None:
            steps.append((ENDPOINT, self._key(f"{endpoint[0].upper()} {endpoint[1]}", host), *pacing))
        for key_class, key, rate, capacity in steps:
            took = self._take(key, rate, capacity, holds, stop)
            self.report(key_class, 1, took)
            waited += took
            holds = ()  # checked with the first take
        if holds and (delay := self.buckets.held_for(holds)) > 0:  # no bucket to take from: holds alone
            pause(delay, stop, self._sleep)
            self.report(HOLD, 0, delay)
            waited += delay
        return waited


class Quota(Protocol):
    """The points quota's gate: this process's :class:`QuotaGauge`, or one shared through PostgreSQL."""

    @property
    def limit(self) -> int | None: ...

    def wait_needed(self) -> float: ...

    def acquire(self) -> float: ...

    def release(self) -> None: ...

    def points_left(self) -> int | None: ...

    def observe(self, reading: QuotaReading) -> int: ...


# Which quota window an answer belongs to (``QuotaGauge._which_window``).
Window = Literal["first", "this", "later", "older"]
HOUR = 3600.0  # the quota window when no answer told its length (jira-api.md §9: points per hour)


def reset_slack(window: float | None) -> float:
    """How far two answers' reset times may differ and still name one window: a quarter of the window."""
    return (window or HOUR) / 4


def next_utc_hour(now: float) -> float:
    """Seconds until the top of the next UTC hour, when a quota answer did not say when it resets."""
    return HOUR - now % HOUR


class QuotaGauge:
    """The points left in the current quota window: a lower bound from the answers, less one per call sent since.

    Each call takes a point before it is sent, so concurrent calls cannot overdraw the quota together. An answer's
    Remaining was true when Jira charged that call; calls still unanswered may have been charged after it, so they are
    taken off it, and the lower of that and the gauge's own count stands. When nothing is left the gauge says how long
    to wait: until the window resets (``reset_in``, else the top of the next UTC hour).

    Answers arrive late and out of order. An answer belongs to the window its reset time points at, give or take a
    quarter of a window (reset times are whole seconds, and an answer may wait in a busy process), so a late answer of
    this window is not taken for a new window, and a late answer of a window that has reset changes nothing.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self.remaining: int | None = None  # None: not known (no quota seen, or a new window not yet answered)
        self.limit: int | None = None
        self._window: float | None = None  # the window's length, from RateLimit-Policy ``w``
        self._resets_at: float | None = None  # on ``clock``; kept after the reset, to recognise late answers
        self._reset_passed = False  # the clock passed ``_resets_at`` and no answer of the new window came yet
        self._seen_low: int | None = None  # the lowest Remaining an answer showed in this window
        self.in_flight = 0  # calls that took a point and have no answer yet

    def _roll(self, now: float) -> None:
        if self._resets_at is not None and now >= self._resets_at and not self._reset_passed:
            self.remaining = self._seen_low = None
            self._reset_passed = True

    def points_left(self) -> int | None:
        """The points left in this window as far as this process knows (None: not known)."""
        with self._lock:
            self._roll(self._clock())
            return self.remaining

    def wait_needed(self) -> float:
        """Seconds until the quota has points again (0: it has, or nothing is known)."""
        with self._lock:
            return self._wait(self._clock())

    def acquire(self) -> float:
        """Take a point for a call about to be sent (it costs at least the base point) and return 0, or return the
        seconds to wait before asking again; one step, so concurrent calls cannot both take the last point. A call
        that took a point ends with :meth:`observe` (its answer's headers) or :meth:`release` (no quota reading)."""
        with self._lock:
            wait = self._wait(self._clock())
            if wait == 0:
                self.in_flight += 1
                if self.remaining is not None:
                    self.remaining -= 1
            return wait

    def release(self) -> None:
        """A call that took a point ended without a quota reading (no answer, or no quota headers)."""
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)

    def _wait(self, now: float) -> float:
        self._roll(now)
        if self.remaining is None or self.remaining > 0:
            return 0.0
        if self._resets_at is None:
            self._resets_at = now + next_utc_hour(self._wall())
        return self._resets_at - now

    def observe(self, reading: QuotaReading) -> int:
        """Take in an answer's quota headers (and end its call); the points this answer shows spent (an estimate).

        Within a window that is the drop of the lowest Remaining seen; the first answer of a later window counts
        ``limit - remaining``; the first answer ever, whose window started before us, and a late answer of a window
        that has reset count 1.
        """
        with self._lock:
            now = self._clock()
            self._roll(now)
            self.in_flight = max(0, self.in_flight - 1)
            if reading.limit is not None:
                self.limit = reading.limit
            if reading.window is not None:
                self._window = reading.window
            if reading.exhausted:  # a quota 429 speaks for now, whatever window the gauge took it for
                self._spent_until(now, reading.reset_in)
                return 0
            which = self._which_window(now, reading.reset_in)
            if which == "older" or reading.remaining is None:
                return 1
            spent = self._spent(reading.remaining, which)
            low = self._seen_low if which == "this" and self._seen_low is not None else reading.remaining
            self._seen_low = min(low, reading.remaining)
            known = reading.remaining - self.in_flight  # the calls still out may have been charged after this one
            if which == "this" and self.remaining is not None:
                known = min(self.remaining, known)
            self.remaining = known
            return spent

    def _spent_until(self, now: float, reset_in: float | None) -> None:
        """Nothing is left until ``reset_in`` (not told: the top of the next UTC hour, see ``_wait``)."""
        self.remaining = 0
        self._resets_at = None if reset_in is None else now + reset_in
        self._reset_passed = False

    def _which_window(self, now: float, reset_in: float | None) -> Window:
        """The window an answer belongs to: "first" (none known yet), "this", "later" (the window turned over) or
        "older" (a late answer of a window that has reset)."""
        if reset_in is None:  # no reset time told: only the clock passing the last one known says a window ended
            if self._reset_passed:
                self._resets_at, self._reset_passed = None, False
                return "later"
            return "first" if self._resets_at is None and self._seen_low is None else "this"
        ends = now + reset_in
        if self._resets_at is None:
            self._resets_at = ends
            return "first"
        slack = reset_slack(self._window)
        if ends > self._resets_at + slack:
            self._resets_at, self._reset_passed = ends, False
            return "later"
        if ends < self._resets_at - slack or self._reset_passed:
            return "older"
        self._resets_at = max(self._resets_at, ends)  # each answer's reset is late, never early: keep the safest
        return "this"

    def _spent(self, remaining: int, which: Window) -> int:
        if which == "this" and self._seen_low is not None:
            return max(0, self._seen_low - remaining)
        if which == "later" and self.limit is not None:
            return max(1, self.limit - remaining)
        return 1
