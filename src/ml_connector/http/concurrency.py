"""Adaptive concurrency: how many requests of one endpoint class may be in flight at once.

:class:`AimdLimit` is the pure controller (no I/O, clock injected); :class:`ConcurrencyGate` holds callers back to
its limit. ``ApiSession`` keeps one gate per endpoint class (method + path template, as Jira's burst buckets are).

Why AIMD (additive increase, multiplicative decrease), as TCP congestion control does it:

* The right number of calls in flight is rate times latency (Little's law) and neither is known in advance: a bulk
  create may take 50 ms or 2 s of server time. So the limit probes: it starts small, doubles per round trip while
  answers come back fast (slow start), and after the first sign of congestion grows by about one per round trip.
  An endpoint the pacer holds to a documented rate starts at what that pacing lets out at once instead
  (``ApiSession._initial_in_flight``): a short run would otherwise spend its first round trips in slow start.
* A 429 halves the limit at once: the server says it is over its budget. Latency rising well above the fastest seen
  means requests queue on the far side before it sends 429s; that cuts the limit by a smaller factor. The sign is the
  fastest answer of each round trip (as TCP Vegas compares each round's fastest RTT with the base RTT), more than
  ``latency_tolerance`` times the fastest ever: a queue delays every answer, the fastest too, while latency that merely
  varies (a network's jitter, work that differs in size) leaves some answers of every round fast. An average would
  read that spread as a queue and hold the limit at its floor. One decrease per round trip: the answers to calls sent
  before a decrease carry the same news and must not cut the limit again.
* Growth needs evidence: the limit only grows while callers keep it at least half used, so a lone sequential caller
  never builds up a large window it would later spend in one burst.

The limit never exceeds ``cap`` (``http.max_in_flight``) and never drops below ``MIN_IN_FLIGHT`` (two): a lone call
sitting out a Retry-After would leave the endpoint idle, and two calls are never by themselves what overloads an
endpoint whose burst limit is 50 or more per second; the 429s then come from other traffic, and each call already
waits its Retry-After. Rates stay bounded separately by the pacer's token buckets (``http.requests_per_minute``,
``http.method_rates``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ml_connector.errors import Unavailable

MIN_IN_FLIGHT = 2  # the floor of the limit (see above), or the cap when that is lower
THROTTLE_FACTOR = 0.5  # on a 429 (or a 503): halve
LATENCY_FACTOR = 0.8  # on rising latency: a gentler cut, the server has not refused anything yet
SMOOTHING = 0.2  # weight of a new latency sample in the moving average
# Per round trip the fastest-seen latency creeps towards the round's fastest: a slower server becomes the norm after
# some ten round trips.
FLOOR_DRIFT = 0.1


@dataclass
class LimitState:
    """A snapshot for tests, logs and metrics."""

    limit: float
    threshold: float
    smoothed_latency: float | None
    fastest_latency: float | None


class AimdLimit:
    """The in-flight limit of one endpoint class; callers report every answer (its latency) and every throttle."""

    def __init__(
        self,
        *,
        initial: int,
        cap: int,
        latency_tolerance: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap = max(1, cap)
        self.floor = float(min(MIN_IN_FLIGHT, self.cap))
        self.limit = float(min(max(self.floor, initial), self.cap))
        self.threshold = float(self.cap)  # slow start below it, one per round trip above it
        self.latency_tolerance = latency_tolerance
        self._clock = clock
        self._smoothed: float | None = None
        self._fastest: float | None = None
        self._round_fastest: float | None = None  # the fastest answer of the round trip in progress
        self._round_answers = 0
        self._quiet_until = float("-inf")  # no second decrease before this (one round trip after the last)

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(int(self.floor), int(self.limit))

    def state(self) -> LimitState:
        return LimitState(self.limit, self.threshold, self._smoothed, self._fastest)

    def on_success(self, latency: float, in_flight: int) -> None:
        """An answer came back after ``latency`` s with ``in_flight`` calls of the class out (this one included)."""
        latency = max(latency, 1e-6)
        self._smoothed = latency if self._smoothed is None else (1 - SMOOTHING) * self._smoothed + SMOOTHING * latency
        if self._fastest is None:
            self._fastest = latency
        fastest = self._fastest  # as it stood before this answer's round (the round may move it below)
        if (of_round := self._end_of_round(latency)) is not None:
            self._fastest = min(of_round, fastest * (1 - FLOOR_DRIFT) + of_round * FLOOR_DRIFT)
            if of_round > self.latency_tolerance * fastest:  # even the round's fastest answer queued
                self._decrease(LATENCY_FACTOR)
                return
        if in_flight * 2 < self.allowed or latency > self.latency_tolerance * fastest:
            return  # the window is not being used, or this answer was slow: no evidence that more would go well
        step = 1.0 if self.limit < self.threshold else 1.0 / self.limit
        self.limit = min(float(self.cap), self.limit + step)

    def _end_of_round(self, latency: float) -> float | None:
        """The fastest answer of the round trip this answer ends (``allowed`` answers make a round), else None."""
        self._round_fastest = latency if self._round_fastest is None else min(self._round_fastest, latency)
        self._round_answers += 1
        if self._round_answers < self.allowed:
            return None
        of_round, self._round_fastest, self._round_answers = self._round_fastest, None, 0
        return of_round

    def on_throttle(self) -> None:
        """The server refused a call for load (429, 503): back off."""
        self._decrease(THROTTLE_FACTOR)

    def _decrease(self, factor: float) -> None:
        now = self._clock()
        if now < self._quiet_until:
            return
        self.limit = max(self.floor, self.limit * factor)
        self.threshold = self.limit
        self._quiet_until = now + (self._smoothed or 0.0)


class ConcurrencyGate:
    """Blocks callers while the class has ``limit.allowed`` calls in flight; records the high-water mark."""

    def __init__(self, limit: AimdLimit) -> None:
        self.limit = limit
        self.in_flight = 0
        self.high_water = 0
        self._cond = threading.Condition()

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Wait for a slot; a set ``stop`` ends the wait with ``Unavailable`` (the call was not sent)."""
        with self._cond:
            while self.in_flight >= self.limit.allowed:
                if stop is not None and stop.is_set():
                    raise Unavailable("shutting down: not sent (it was waiting for a free slot)", not_sent=True)
                self._cond.wait(0.25)
            self.in_flight += 1
            self.high_water = max(self.high_water, self.in_flight)

    def release(self, *, latency: float | None = None, throttled: bool = False) -> None:
        """Free the slot; ``latency`` for an answer that counts as fast-or-slow evidence, ``throttled`` for a 429."""
        with self._cond:
            if throttled:
                self.limit.on_throttle()
            elif latency is not None:
                self.limit.on_success(latency, self.in_flight)
            self.in_flight -= 1
            self._cond.notify_all()

    @contextmanager
    def slot(self, stop: threading.Event | None = None) -> Iterator[GateSlot]:
        """Hold a slot for one exchange; the caller sets what the answer said on the yielded ``GateSlot``."""
        self.acquire(stop)
        outcome = GateSlot()
        try:
            yield outcome
        finally:
            self.release(latency=outcome.latency, throttled=outcome.throttled)


@dataclass
class GateSlot:
    latency: float | None = None
    throttled: bool = False
