"""Reading a key-ordered collection from both ends: every row once, found by key equality, errors and stops kept."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.errors import TransientError
from ml_connector.ifs.bothends import WAITING_PAGES, key_getter, read_both_ends
from ml_connector.ifs.client import Page


class Unordered:
    """A key that can be hashed and compared for equality only: ordering it raises."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unordered) and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)

    def __lt__(self, other: object) -> bool:
        raise AssertionError("keys were ordered in Python")


class Chain:
    """A page chain over ``rows`` (already in this chain's order): pages of ``size``, then each twice as big."""

    def __init__(self, rows: list[dict[str, Any]], size: int, *, jitter: float = 0.0,
                 fail_at: int | None = None, delay: float = 0.0, grow: bool = True) -> None:
        self.rows, self.size, self.jitter, self.fail_at, self.delay = rows, size, jitter, fail_at, delay
        self.grow = grow
        self.pages_read = self.rows_read = 0
        self.started = False

    def __call__(self) -> Iterator[Page]:
        self.started = True
        start, size, number = 0, self.size, 0
        while start < len(self.rows):
            time.sleep(self.delay)
            if self.jitter:
                time.sleep(random.uniform(0, self.jitter))
            number += 1
            if number == self.fail_at:
                raise TransientError("IFS answered 503 for this page", system="ifs")
            rows = self.rows[start : start + size]
            start += size
            self.pages_read += 1
            self.rows_read += len(rows)
            yield Page(rows, number, "next" if start < len(self.rows) else None, False)
            size *= 2 if self.grow else 1


def rows(n: int, *, unordered: bool = False) -> list[dict[str, Any]]:
    return [{"OrderNo": Unordered(i) if unordered else f"PO-{i:06d}"} for i in range(n)]


def numbers(pages: list[Page]) -> list[Any]:
    return [r["OrderNo"] for p in pages for r in p.rows]


def read(asc: Chain, desc: Chain, **kwargs: Any) -> list[Page]:
    return list(read_both_ends(asc, desc, key_getter("OrderNo"), **kwargs))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 400), size=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_every_row_comes_once_and_every_page_ascends(n: int, size: int, seed: int) -> None:
    random.seed(seed)
    data = rows(n)
    pages = read(Chain(data, size, jitter=0.002), Chain(data[::-1], size, jitter=0.002))
    got = numbers(pages)
    assert sorted(got) == [r["OrderNo"] for r in data]  # none lost, none twice
    for page in pages:
        assert [r["OrderNo"] for r in page.rows] == sorted(r["OrderNo"] for r in page.rows)
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))


def test_the_meeting_point_is_found_by_equality_alone() -> None:
    data = rows(300, unordered=True)
    got = numbers(read(Chain(data, 10, jitter=0.001), Chain(data[::-1], 10, jitter=0.001)))
    assert len(got) == 300 and set(got) == {r["OrderNo"] for r in data}


def test_one_page_collection_never_starts_the_descending_chain() -> None:
    data = rows(5)
    desc = Chain(data[::-1], 10)
    assert numbers(read(Chain(data, 10), desc)) == [r["OrderNo"] for r in data]
    assert not desc.started


def test_the_chains_read_about_half_each() -> None:
    data = rows(1000)
    asc, desc = Chain(data, 50, delay=0.005, grow=False), Chain(data[::-1], 50, delay=0.005, grow=False)
    assert len(numbers(read(asc, desc))) == 1000
    # each chain read a share; together no more than the rows, the page they met in and one more page each
    assert 300 < asc.rows_read < 700 and 300 < desc.rows_read < 700
    assert asc.rows_read + desc.rows_read <= 1000 + 3 * 50


def test_a_chain_failing_before_they_meet_ends_the_pass_with_its_error_after_the_pages_before_it() -> None:
    data = rows(1000)
    pages: list[Page] = []
    with pytest.raises(TransientError, match="503"):
        for page in read_both_ends(Chain(data, 10, delay=0.05), Chain(data[::-1], 10, fail_at=2),
                                   key_getter("OrderNo")):
            pages.append(page)
    got = numbers(pages)
    assert got and len(set(got)) == len(got) and len(got) < 1000


def test_a_failure_after_the_chains_met_loses_nothing_and_is_not_raised() -> None:
    data = rows(100)
    desc_go = threading.Event()

    class SlowFailing(Chain):
        def __call__(self) -> Iterator[Page]:
            yield Page(list(self.rows[:10]), 1, "next", False)
            desc_go.wait(5)  # the ascending chain reads everything meanwhile
            time.sleep(0.05)
            raise TransientError("connection reset after the chains met", system="ifs")

    class Ascending(Chain):
        def __call__(self) -> Iterator[Page]:
            yield Page(list(self.rows[:10]), 1, "next", False)
            time.sleep(0.05)  # the descending chain's first page is in by now
            yield Page(list(self.rows[10:]), 2, None, False)
            desc_go.set()

    got = numbers(read(Ascending(data, 10), SlowFailing(data[::-1], 10)))
    assert sorted(got) == [r["OrderNo"] for r in data] and len(got) == 100


def test_chains_that_pass_each_other_unnoticed_lose_no_row() -> None:
    # The descending chain reads 99 down to 50; then 50-69 (its two newest pages) are deleted before the ascending
    # chain gets there, so no row it reads is among the keys kept to find the meeting point.
    data = rows(100)
    desc_done = threading.Event()

    def ascending() -> Iterator[Page]:
        yield Page(data[:40], 1, "next", False)
        desc_done.wait(5)
        yield Page(data[40:50] + data[70:], 2, None, False)

    def descending() -> Iterator[Page]:
        for number, top in enumerate(range(100, 50, -10), start=1):
            yield Page(data[top - 10 : top][::-1], number, "next", False)
        desc_done.set()
        time.sleep(0.1)
        yield Page(data[40:50][::-1], 6, None, False)

    got = numbers(list(read_both_ends(ascending, descending, key_getter("OrderNo"))))
    assert set(got) == {r["OrderNo"] for r in data}  # rows come twice (70-99), none is lost


def test_a_stop_ends_both_chains_after_their_current_page() -> None:
    data = rows(10_000)
    stop = threading.Event()
    asc, desc = Chain(data, 10, jitter=0.001), Chain(data[::-1], 10, jitter=0.001)
    got = []
    for page in read_both_ends(asc, desc, key_getter("OrderNo"), stop=stop):
        got.extend(page.rows)
        stop.set()
    assert len(got) < 10_000 and asc.pages_read + desc.pages_read <= 4


def test_chains_wait_while_the_caller_has_pages_to_take_and_stop_when_it_goes() -> None:
    data = rows(100_000)
    asc, desc = Chain(data, 100, grow=False), Chain(data[::-1], 100, grow=False)
    pages = read_both_ends(asc, desc, key_getter("OrderNo"))
    first = next(pages)
    time.sleep(0.3)  # a slow caller: the chains must not read the collection into memory meanwhile
    # the pages taken or queued, the one each chain holds waiting for room, and the marker that started descending
    assert first.rows and asc.pages_read + desc.pages_read <= 1 + WAITING_PAGES + 2
    pages.close()  # the caller goes: both chains end (their threads are joined) instead of waiting forever
    assert asc.pages_read + desc.pages_read <= 1 + WAITING_PAGES + 4


@pytest.mark.parametrize("n", [0, 5, 300])
def test_eager_starts_both_ends_at_once_and_still_hands_every_row_over_once(n: int) -> None:
    data = rows(n)
    asc, desc = Chain(data, 10, delay=0.01), Chain(data[::-1], 10, delay=0.01)
    got = numbers(list(read_both_ends(asc, desc, key_getter("OrderNo"), eager=True)))
    assert sorted(got) == [r["OrderNo"] for r in data] and len(got) == n
    assert asc.started and desc.started  # a collection of one page (or none) costs both ends a call
