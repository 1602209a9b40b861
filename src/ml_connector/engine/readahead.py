"""Reading ahead of the commits (DESIGN §4.1): the next IFS pages are read while the reading thread plans and commits
the page before them.

A producer thread walks the pages (each needs the previous page's nextLink, so they stay one chain) and hands each
to ``prepare``, which starts the page's slower reads (its lines) on other threads and returns at once. The reading
thread takes the prepared pages in their order and commits each before it takes the next, so durability is as
without reading ahead: a page read ahead is only data in memory, the cursor moves with committed pages only. An error
met reading page n + 1 reaches the reading thread when it asks for page n + 1, after page n has committed, and ends
the pass there: no page is skipped. ``ahead`` bounds the prepared pages waiting to be taken (the producer reads one
more meanwhile); with 0 nothing runs ahead and every page is read and prepared when the reading thread asks for it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from ml_connector.handoff import put_unless_gone

T = TypeVar("T")


class _End:
    """Queued after the last page (or instead of the next page, with the error that ended the pages)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """``prepare(page)`` for each of ``pages``, produced up to ``ahead`` pages before the caller takes them."""

    def __init__(
        self,
        pages: Iterable[Any],
        prepare: Callable[[Any], T],
        *,
        ahead: int,
        stop: threading.Event | None = None,
    ) -> None:
        self._pages = pages
        self._prepare = prepare
        self.ahead = max(0, ahead)
        self._stop = stop or threading.Event()
        self._closed = threading.Event()
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, self.ahead))
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[T]:
        if not self.ahead:
            yield from (self._prepare(page) for page in self._pages)
            return
        if self._thread is None:
            # A copy of this context: the run's rate-limit budget (a context variable) applies to the reads there too.
            run = contextvars.copy_context().run
            self._thread = threading.Thread(target=run, args=(self._produce,), name="mlc-read", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _produce(self) -> None:
        """The producer thread: every page prepared and queued in order, then the end (or the error met)."""
        end = _End()
        try:
            for page in self._pages:
                if self._closed.is_set() or self._stop.is_set():
                    break  # the reader is gone or the run is stopping: read no further page
                if not self._put(self._prepare(page)):
                    break
        except BaseException as exc:  # handed over to the reading thread, which raises it
            end = _End(exc)
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()  # the page generator's own clean-up, on this thread (it was iterated here)
        self._put(end)

    def _put(self, item: T | _End) -> bool:
        """Queue ``item``, waiting while the queue is full; False when the reader has gone meanwhile."""
        return put_unless_gone(self._queue, item, self._closed)

    def close(self) -> None:
        """Stop reading ahead and wait for the producer (it finishes the read it is in, and its retries)."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
