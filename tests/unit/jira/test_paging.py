"""``offset_pages`` against scripted ``startAt`` servers of every shape Jira's paged lists come in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml_connector.jira.paging import PagingError, offset_pages


class Server:
    """Serves ``items`` by ``startAt``; the k-th page holds at most ``chunks[k]`` items, however many were asked."""

    def __init__(self, items: Sequence[int], chunks: Sequence[int], markers: frozenset[str], key: str) -> None:
        self.items, self.chunks, self.markers, self.key = list(items), list(chunks), markers, key
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, size: int) -> Mapping[str, Any]:
        served = min(size, self.chunks[len(self.calls) % len(self.chunks)])
        self.calls.append((start, size))
        values = self.items[start : start + served]
        page: dict[str, Any] = {self.key: values, "startAt": start}
        if "isLast" in self.markers:
            page["isLast"] = start + len(values) >= len(self.items)
        if "total" in self.markers:
            page["total"] = len(self.items)
        if "maxResults" in self.markers:
            page["maxResults"] = served
        return page


@given(
    count=st.integers(0, 300),
    page_size=st.integers(1, 120),
    chunks=st.lists(st.integers(1, 150), min_size=1, max_size=12),
    markers=st.frozensets(st.sampled_from(["isLast", "total", "maxResults"])),
    key=st.sampled_from(["values", "issueTypes", "fields"]),
)
def test_every_item_once_in_order_for_any_split(
    count: int, page_size: int, chunks: list[int], markers: frozenset[str], key: str
) -> None:
    items = list(range(count))
    server = Server(items, chunks, markers, key)
    assert list(offset_pages(server, page_size=page_size, key=key)) == items
    starts = [start for start, _ in server.calls]
    assert starts == sorted(set(starts))  # each page asked once, each from where the last one ended
    assert all(size == page_size for _, size in server.calls)
    pages_with_items = sum(1 for start in starts if start < count)
    # One page after the data at most: the empty page that ends a list without isLast or total.
    assert len(server.calls) <= pages_with_items + 1


def test_stops_on_is_last_even_when_total_says_more() -> None:
    calls: list[int] = []

    def fetch(start: int, size: int) -> Mapping[str, Any]:
        calls.append(start)
        return {"values": [1, 2], "isLast": True, "total": 10}

    assert list(offset_pages(fetch, page_size=2)) == [1, 2]
    assert calls == [0]


def test_stops_on_an_empty_page_even_when_not_last() -> None:
    calls: list[int] = []

    def fetch(start: int, size: int) -> Mapping[str, Any]:
        calls.append(start)
        return {"values": [], "isLast": False, "total": 10}

    assert list(offset_pages(fetch, page_size=5)) == []
    assert calls == [0]


def test_stops_once_total_items_are_read() -> None:
    pages = {0: {"values": [1, 2, 3], "total": 5}, 3: {"values": [4, 5], "total": 5}}
    calls: list[int] = []

    def fetch(start: int, size: int) -> Mapping[str, Any]:
        calls.append(start)
        return pages[start]

    assert list(offset_pages(fetch, page_size=3)) == [1, 2, 3, 4, 5]
    assert calls == [0, 3]


def test_without_markers_a_short_page_is_not_taken_for_the_last() -> None:
    pages = {0: {"values": [1]}, 1: {"values": [2, 3]}, 3: {"values": []}}
    assert list(offset_pages(lambda start, size: pages[start], page_size=50)) == [1, 2, 3]


@pytest.mark.parametrize("page", [{"issueTypes": None, "values": [7]}, {"values": [7]}])
def test_named_list_falls_back_to_values(page: Mapping[str, Any]) -> None:
    assert list(offset_pages(lambda start, size: page if start == 0 else {}, page_size=1, key="issueTypes")) == [7]


def test_a_list_that_is_not_a_list_reads_as_empty() -> None:
    assert list(offset_pages(lambda start, size: {"values": "oops", "isLast": False}, page_size=5)) == []


def test_a_server_that_never_ends_stops_with_paging_error() -> None:
    seen: list[int] = []
    with pytest.raises(PagingError, match="exceeded 4 pages"):
        for item in offset_pages(lambda start, size: {"values": [start], "isLast": False}, page_size=1, max_pages=4):
            seen.append(item)
    assert seen == [0, 1, 2, 3]
