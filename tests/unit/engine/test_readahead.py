"""ReadAhead: pages prepared ahead of the reader, handed over in order, errors in their place, nothing read past the
bound, the producer gone when the reader is."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ml_connector.engine.readahead import ReadAhead

WAIT_S = 5.0


class Source:
    """Pages 1..n, counting how many were read; ``fail_at`` raises instead of that page."""

    def __init__(self, n: int, *, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.read: list[int] = []
        self.closed = threading.Event()
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[int]:
        return self.pages()

    def pages(self) -> Iterator[int]:
        try:
            for number in range(1, self.n + 1):
                self.threads.add(threading.current_thread().name)
                if number == self.fail_at:
                    raise RuntimeError(f"page {number} cannot be read")
                self.read.append(number)
                yield number
        finally:
            self.closed.set()


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _settle(read: list[int]) -> int:
    """How many pages were read once the producer has stopped reading (no change for a while)."""
    last = -1
    while len(read) != last:
        last = len(read)
        time.sleep(0.1)
    return last


def test_pages_come_in_order_and_at_most_ahead_plus_one_beyond_the_reader() -> None:
    source = Source(10)
    prepared: list[int] = []

    def prepare(page: int) -> str:
        prepared.append(page)
        return f"p{page}"

    with ReadAhead(source, prepare, ahead=2) as reader:
        pages = iter(reader)
        assert next(pages) == "p1"
        _until(lambda: len(prepared) >= 4)
        # page 1 taken, pages 2 and 3 queued, page 4 prepared and waiting for room: page 5 is not read
        assert _settle(source.read) == 4 and prepared == [1, 2, 3, 4]
        assert list(pages) == [f"p{n}" for n in range(2, 11)]
    assert source.threads == {"mlc-read"}  # read on the producer thread, not the reader's


def test_an_error_reading_page_n_plus_1_is_raised_only_after_page_n_was_taken() -> None:
    source = Source(5, fail_at=3)
    with ReadAhead(source, str, ahead=2) as reader:
        pages = iter(reader)
        assert next(pages) == "1"
        _until(source.closed.is_set)  # the producer has met the error already
        assert next(pages) == "2"  # the page before the error still comes, in its place
        with pytest.raises(RuntimeError, match="page 3 cannot be read"):
            next(pages)
    assert source.read == [1, 2]


def test_an_error_preparing_a_page_is_raised_in_that_pages_place() -> None:
    def prepare(page: int) -> int:
        if page == 2:
            raise ValueError("lines of page 2 refused")
        return page

    source = Source(5)
    with ReadAhead(source, prepare, ahead=1) as reader:
        pages = iter(reader)
        assert next(pages) == 1
        with pytest.raises(ValueError, match="page 2"):
            next(pages)
    assert source.closed.is_set() and source.read == [1, 2]  # nothing read after the failed page


def test_a_reader_that_stops_early_ends_the_producer_and_closes_the_pages() -> None:
    source = Source(100)
    with ReadAhead(source, str, ahead=2) as reader:
        for page in reader:
            if page == "2":
                break
    assert source.closed.is_set()  # the page generator's clean-up ran
    assert not any(t.name == "mlc-read" for t in threading.enumerate())
    assert len(source.read) <= 2 + 2 + 1


def test_a_stop_ends_the_reading_without_an_error() -> None:
    stop = threading.Event()
    source = Source(100)
    taken = []
    with ReadAhead(source, str, ahead=1, stop=stop) as reader:
        for page in reader:
            taken.append(page)
            if page == "1":
                stop.set()
    assert taken[0] == "1" and len(taken) <= 3 and len(source.read) <= 3


def test_with_nothing_ahead_a_page_is_read_only_when_the_reader_asks() -> None:
    source = Source(3)
    with ReadAhead(source, str, ahead=0) as reader:
        pages = iter(reader)
        assert next(pages) == "1"
        time.sleep(0.1)
        assert source.read == [1]
        assert list(pages) == ["2", "3"]
    assert source.threads == {threading.current_thread().name}


def test_the_producer_runs_in_the_readers_context() -> None:
    """The run's rate-limit budget is a context variable: reads made ahead must count against it too."""
    budget: contextvars.ContextVar[str] = contextvars.ContextVar("budget", default="none")
    budget.set("this run")
    seen: list[str] = []
    with ReadAhead(Source(3), lambda page: seen.append(budget.get()), ahead=2) as reader:
        list(reader)
    assert seen == ["this run"] * 3
