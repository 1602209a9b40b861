"""Rate limits are back-pressure: a run waits out 429s within a long total budget, and a stop request cuts a wait short.

The engine opens one :class:`RateLimitBudget` per run with :func:`rate_limit_scope`; every ``ApiSession`` call made
in that run (in that thread, or in a worker given a copy of its context) waits against it. A call made outside any
run (``check``, a one-off command) gets a budget of its own, bounded by the session's ``max_retry_seconds``.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RateLimitBudget:
    """Seconds of 429 waiting allowed in total, the seconds used so far, and the stop event that ends a wait.

    ``waited`` sums the waits of concurrent calls, so it can exceed the wall time the run spent.
    """

    def __init__(
        self,
        max_wait: float,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait = max_wait
        self.stop = stop if stop is not None else threading.Event()
        self._clock = clock
        self._waited = 0.0
        self._lock = threading.Lock()

    @property
    def waited(self) -> float:
        with self._lock:
            return self._waited

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds``; False (at once, or when stop is set) if the budget cannot cover it or stop is set."""
        return self.reserve(seconds) and self.spend(seconds)

    def reserve(self, seconds: float) -> bool:
        """Set ``seconds`` aside for a wait; False when stop is set or the budget cannot cover them."""
        with self._lock:
            if self.stop.is_set() or self._waited + max(0.0, seconds) > self.max_wait:
                return False
            self._waited += max(0.0, seconds)  # up front, so concurrent waits cannot overdraw the budget
            return True

    def spend(self, seconds: float) -> bool:
        """Sleep the ``seconds`` reserved; False when stop cut the sleep short (the unspent part is given back)."""
        started = self._clock()
        if not self.stop.wait(max(0.0, seconds)):
            return True
        with self._lock:
            self._waited -= max(0.0, seconds - (self._clock() - started))
        return False


_current: contextvars.ContextVar[RateLimitBudget | None] = contextvars.ContextVar("mlc_rate_limit", default=None)


def current_budget() -> RateLimitBudget | None:
    """The budget of the run this code is part of, if any."""
    return _current.get()


@contextmanager
def rate_limit_scope(budget: RateLimitBudget) -> Iterator[RateLimitBudget]:
    """Make ``budget`` the one every API call in this context waits against."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
