"""The Jira work of committed pages, done in the background while the next page is read from IFS (DESIGN §4.1).

Durability does not depend on it: a page's records (states, drafts) and its cursor are committed before its work is
handed over, in page order, by the reading thread; the work itself lives in the records table, so a crash or a
failure mid-way leaves it to the work queue of the next run, as without the pipeline. The pipeline only bounds how
far reading runs ahead (``depth`` pages of work in flight, a few more while those pages are small, then the reader
waits) and keeps one record out of two pages' work at once (``busy_with``: the reader drains first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType

from ml_connector.http.ratelimit import submit_in_scope
from ml_connector.store import RecordRow

Apply = Callable[[Sequence[RecordRow]], None]

# How much deeper than ``sync.pipeline_pages`` the pipeline may go for pages of few creates: pages of 1,000 carry 20
# bulk calls, so with two pages at work the calls left when the oldest finishes (20) fall short of the 32 in flight.
# A pass read from both ends starts with four small pages (250, 250, 500, 500 rows: 30 calls in all), so four times
# the depth: at twice, the fifth page waited for the first while Jira had room.
DEEPER = 4


@dataclass(frozen=True)
class _PageWork:
    """One page's work in flight: its future, its records' keys and how many records it carries."""

    future: Future[None]
    keys: frozenset[str]
    size: int


class PagePipeline:
    """Runs ``apply`` for each page's work on a worker thread, ``depth`` pages at once (0: in the caller), and up to
    ``DEEPER`` times as many while the pages behind the oldest carry fewer than ``fill`` records (see ``_full``)."""

    def __init__(self, apply: Apply, depth: int, *, fill: int = 0) -> None:
        self._apply = apply
        self.depth = max(0, depth)
        self.most = DEEPER * self.depth
        self.fill = fill
        self._pool = ThreadPoolExecutor(max_workers=self.most, thread_name_prefix="mlc-page") if self.depth else None
        self._in_flight: deque[_PageWork] = deque()

    def submit(self, work: Sequence[RecordRow]) -> None:
        """Hand a committed page's work over; blocks while the pipeline is full. Raises the error of an earlier
        page's work (a systemic error stops the flow)."""
        if not work:
            self._reap()
            return
        if self._pool is None:
            self._apply(work)
            return
        self._reap()
        while self._full():
            wait([page.future for page in self._in_flight if not page.future.done()], return_when=FIRST_COMPLETED)
            self._reap()
        future = submit_in_scope(self._pool, self._apply, work)
        self._in_flight.append(_PageWork(future, frozenset(r.ifs_key for r in work), len(work)))

    def _full(self) -> bool:
        """Whether the next page must wait: ``depth`` pages at work, unless the pages behind the oldest carry fewer
        than ``fill`` records. Then the oldest page's last calls would be followed by too few to keep the far side's
        pipe full while the next page is handed over and its first calls go out, so it joins now (up to ``most``)."""
        busy = [page for page in self._in_flight if not page.future.done()]
        if len(busy) < self.depth:
            return False
        if len(busy) >= self.most:
            return True
        return sum(page.size for page in busy[1:]) >= self.fill

    def busy_with(self, keys: Iterable[str]) -> bool:
        """Whether work in flight touches any of these records (a record read again on the next page)."""
        wanted = set(keys)
        return any(not wanted.isdisjoint(page.keys) for page in self._in_flight if not page.future.done())

    def drain(self) -> None:
        """Wait for all work in flight; raises the first error."""
        while self._in_flight:
            wait([self._in_flight[0].future])
            self._reap()

    def _reap(self) -> None:
        """Drop finished pages, the oldest first (in page order); raise the first error met."""
        while self._in_flight and self._in_flight[0].future.done():
            error = self._in_flight.popleft().future.exception()
            if error is not None:
                raise error

    def __enter__(self) -> PagePipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Always wait for the work in flight (no thread writes after the run ends); its error is raised unless the
        reader is already failing with its own."""
        try:
            if self._pool is not None:
                wait([page.future for page in self._in_flight])
                if error is None:
                    self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
