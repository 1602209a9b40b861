"""Reading a whole key-ordered collection from both ends at once, meeting in the middle.

One chain of pages is as slow as the server's time per row: each page needs the previous page's nextLink. A pass
that reads everything in key order (a backfill, ``--full``, a snapshot pass) can run two chains that do not depend
on each other, ascending from the first key and descending from the last, and stop where they meet: rows arrive
twice as fast for the same calls, plus at most a page per chain read past the meeting point.

Where they meet is found by key equality only, never by comparing keys in Python: the server's collation decides
the order, and Python's may differ. Two contiguous runs of one total order that overlap share a row, so the first
row of a page that the other chain already returned is the meeting point, and every row after it in that page was
returned too. Each chain's newest pages' keys are kept to find it (not every key: the pass's memory stays that of
one chain). Should the shared rows all be deleted between the two reads, the chains pass each other unnoticed and
each reads on to its end: rows come twice, none is lost, and the engine plans a record read again from the store
as it then is.

The descending chain's pages are handed over with their rows in ascending order, so every page is a contiguous
ascending key range, as from one chain. Unless told the collection is large (``eager``), the descending chain
starts only once the first ascending page shows there is more to read, so a collection of one page costs one call.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import replace
from typing import Any, Literal

from ml_connector.handoff import put_unless_gone
from ml_connector.ifs.client import Page, Record

Side = Literal["ascending", "descending"]
PageSource = Callable[[], Iterator[Page]]
RECENT_PAGES = 2  # pages per chain whose keys are kept to find the meeting point
# Pages read but not yet taken, beyond which a chain waits: the caller's own read-ahead bounds the rest, and a pass
# of 100,000 rows must not sit in memory because IFS answers faster than the pages are committed.
WAITING_PAGES = 2


class _Ended:
    """Queued when a chain has no more pages (with the error that ended it, if one did)."""

    def __init__(self, side: Side, error: BaseException | None = None) -> None:
        self.side = side
        self.error = error


class _StartDescending:
    """Queued by the ascending chain once its first page shows there is more to read."""


class BothEnds:
    """The pages of ``ascending()`` and ``descending()`` (the same collection in opposite orders) until they meet."""

    def __init__(
        self,
        ascending: PageSource,
        descending: PageSource,
        key_of: Callable[[Record], Hashable],
        *,
        stop: threading.Event | None = None,
        eager: bool = False,
    ) -> None:
        self._sources: dict[Side, PageSource] = {"ascending": ascending, "descending": descending}
        self._key_of = key_of
        self._stop = stop or threading.Event()
        self._done = threading.Event()  # met, or one chain reached its end: no more pages are wanted
        self._lock = threading.Lock()
        self._recent: dict[Side, deque[set[Hashable]]] = {s: deque(maxlen=RECENT_PAGES) for s in self._sources}
        self._closed = threading.Event()  # the caller has gone: nothing queued will be taken
        self._queue: queue.Queue[Page | _Ended | _StartDescending] = queue.Queue(maxsize=WAITING_PAGES)
        self._threads: list[threading.Thread] = []
        self._number = 0
        self._eager = eager
        self._descending_asked = eager

    def __iter__(self) -> Iterator[Page]:
        self._start("ascending")
        running = 1
        if self._eager:  # both ends from the start (not ``_descending_asked``: the ascending end sets that)
            self._start("descending")
            running += 1
        try:
            while running:
                item = self._queue.get()
                if isinstance(item, _Ended):
                    running -= 1
                    if item.error is not None:
                        raise item.error
                    continue
                if isinstance(item, _StartDescending):
                    if not self._done.is_set():
                        running += 1
                        self._start("descending")
                    continue
                yield item
        finally:
            self._done.set()
            self._closed.set()
            for thread in self._threads:
                thread.join()

    def _start(self, side: Side) -> None:
        # A copy of this context: the run's rate-limit budget (a context variable) applies to the reads there too.
        run = contextvars.copy_context().run
        thread = threading.Thread(target=run, args=(self._walk, side), name=f"mlc-read-{side[:4]}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _walk(self, side: Side) -> None:
        """One chain, on its own thread: each page handed to ``_take`` until the pages end or are not wanted."""
        error: BaseException | None = None
        pages = self._sources[side]()
        try:
            for page in pages:
                if not self._take(side, page) or self._stop.is_set():
                    break
        except BaseException as exc:  # handed over to the iterating thread, which raises it
            error = exc
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()  # the page generator's own clean-up, on the thread that iterated it
        with self._lock:
            if self._done.is_set():
                error = None  # the chains had met (or the other one ended): a failure now loses no row
            # Read to its end (the other chain has nothing left to add) or failed: either way the pass ends here.
            self._done.set()
            self._put(_Ended(side, error))

    def _take(self, side: Side, page: Page) -> bool:
        """Queue ``page`` cut at the meeting point; False once no more pages of ``side`` are wanted."""
        with self._lock:
            if self._done.is_set():
                return False
            other: Side = "descending" if side == "ascending" else "ascending"
            met = self._met_at(page.rows, self._recent[other])
            rows = page.rows if met is None else page.rows[:met]
            if rows:
                self._recent[side].append({self._key_of(r) for r in rows})
                self._number += 1
                ordered = rows if side == "ascending" else rows[::-1]
                if not self._put(replace(page, rows=ordered, number=self._number)):
                    return False
            if met is not None:
                self._done.set()
                return False
            if side == "ascending" and not self._descending_asked and (page.next_link is not None or page.number > 1):
                self._descending_asked = True
                return self._put(_StartDescending())
            return True

    def _put(self, item: Page | _Ended | _StartDescending) -> bool:
        """Queue ``item``, waiting while the queue is full; False when the caller has gone meanwhile. Called with
        the lock held, so the queue keeps the order in which pages were cut at the meeting point."""
        return put_unless_gone(self._queue, item, self._closed)

    def _met_at(self, rows: list[Record], other: deque[set[Hashable]]) -> int | None:
        """The index of the first of ``rows`` the other chain returned already, or None."""
        if not other:
            return None
        for index, row in enumerate(rows):
            key = self._key_of(row)
            if any(key in keys for keys in other):
                return index
        return None


def read_both_ends(
    ascending: PageSource,
    descending: PageSource,
    key_of: Callable[[Record], Hashable],
    *,
    stop: threading.Event | None = None,
    eager: bool = False,
) -> Iterator[Page]:
    """The pages of a whole key-ordered collection, read from both ends at once (see the module docstring).
    ``eager`` starts both ends at once, for a collection known to be large: the descending end then gains the
    first ascending page's time, and a collection of one page costs two calls."""
    return iter(BothEnds(ascending, descending, key_of, stop=stop, eager=eager))


def key_getter(field: str) -> Callable[[Record], Any]:
    return lambda row: row.get(field)
