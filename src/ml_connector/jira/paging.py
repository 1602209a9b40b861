"""Jira's offset paging (``startAt``/``maxResults``), read one way for every paged list.

Jira's paged lists come in more than one shape: ``PageBean`` (``values``, ``isLast``, ``total``), createmeta
(``issueTypes`` or ``fields`` and ``total``, no ``isLast``), and servers that cap ``maxResults`` below what was asked
without saying so. :func:`offset_pages` trusts only what each page states:

* the next ``startAt`` is this one plus the items actually received, so a short page skips nothing;
* it stops on ``isLast: true``, on an empty page, or once ``total`` items are behind it;
* with neither ``isLast`` nor ``total`` it reads on until an empty page: one request more, never an item less.

A server that never ends (ignores ``startAt`` and never says last) stops with :class:`PagingError` after
``max_pages`` pages instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ml_connector.errors import TransientError

MAX_PAGES = 1000


class PagingError(TransientError):
    """A listing did not terminate sanely (a repeated page token, or more pages than the bound).

    Transient, so a caller's cursor never advances past a listing that may have missed items.
    """


def _items(page: Mapping[str, Any], key: str) -> list[Any]:
    items = page.get(key)
    if items is None:
        items = page.get("values")
    return items if isinstance(items, list) else []


def _has_more(page: Mapping[str, Any], start: int, received: int) -> bool:
    if received == 0 or page.get("isLast") is True:
        return False
    total = page.get("total")
    if isinstance(total, int) and not isinstance(total, bool):
        return start + received < total
    return True


def offset_pages(
    fetch: Callable[[int, int], Mapping[str, Any]],
    *,
    page_size: int,
    key: str = "values",
    max_pages: int = MAX_PAGES,
    system: str = "jira",
) -> Iterator[Any]:
    """Each item of a ``startAt`` listing once, in order; ``fetch(start_at, max_results)`` returns one page.

    ``key`` names the list in a page (``values`` when the page has no such key).
    """
    start = 0
    for _ in range(max_pages):
        page = fetch(start, page_size)
        items = _items(page, key)
        yield from items
        if not _has_more(page, start, len(items)):
            return
        start += len(items)
    raise PagingError(f"a listing exceeded {max_pages} pages of {page_size}", system=system)
