"""How many issues each bulk-create call of a run carries, decided when the call is about to go out.

Calls are full (``sync.bulk_size``) while the pass is still being read. A full call keeps Jira busy for seconds
(about 1.5 s for 50 issues on a real tenant), and the calls in flight (``sync.bulk_concurrency``) end at staggered
times. So, with full calls to the end, the last round leaves most slots idle while a few full calls finish: on a
10,000-record backfill that tail was 1.6 s at an average of 15 of 32 slots busy. Once the last page has been read
and more calls have gone out than there are slots, the work left is known: each call then takes its share of the
issues waiting, ``ceil(waiting / slots)``, so the last calls shrink and end close together (guided self-scheduling).
A call never shrinks below half a full call: each call costs Jira a fixed part of its time too, and many small calls
would spend more of it than the tail wastes.

Small runs (no more calls than slots) are not affected: their calls all go out at once, full, as before.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class CallShares:
    """Thread-safe: the create threads take from it as their turn comes.

    A page's work brackets itself with ``page()`` from its start (before its lookups), so the tail is not taken
    for known while a page's creates are still to come. The reading thread hands the last page over before it calls
    ``read_all``, and that page's work starts on its own thread a moment later: a call taken in that moment may be
    sized from too few waiting issues (never below half a full call).
    """

    def __init__(self, full: int, slots: int) -> None:
        self.full = max(1, full)
        self.slots = max(1, slots)
        self.floor = max(1, self.full // 2)
        self._lock = threading.Lock()
        self._waiting = 0  # items of every page not yet taken
        self._entering = 0  # pages at work whose creates are not registered yet
        self._read_all = False
        self._calls = 0

    @contextmanager
    def page(self) -> Iterator[Callable[[Sequence[T]], deque[T]]]:
        """One page's work: yields ``register``, to be called once with the page's creates (or not at all); it
        returns them as the queue ``take`` takes from, in page order."""
        with self._lock:
            self._entering += 1
        done = False

        def register(items: Sequence[T]) -> deque[T]:
            nonlocal done
            with self._lock:
                if not done:
                    self._entering -= 1
                    done = True
                self._waiting += len(items)
            return deque(items)

        try:
            yield register
        finally:
            register([])

    def read_all(self) -> None:
        """The pass's last page has been handed over: no creates come after those of the pages at work."""
        with self._lock:
            self._read_all = True

    def take(self, waiting: deque[T]) -> list[T]:
        """The next call's items from this page (empty when the page has none left)."""
        with self._lock:
            size = min(self._size(), len(waiting))
            taken = [waiting.popleft() for _ in range(size)]
            self._waiting -= size
            self._calls += 1 if taken else 0
        return taken

    def _size(self) -> int:
        tail_known = self._read_all and not self._entering and self._calls >= self.slots
        if not tail_known:
            return self.full
        return max(self.floor, min(self.full, math.ceil(self._waiting / self.slots)))
