"""10,000 purchase orders, page cap 1,000: each arrives exactly once, with next links and by keyset fallback,
while the simulator inserts and edits records between pages and while the access token expires mid-iteration.

One simulator per paging mode is seeded once for the module; each test restores what it changed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ml_connector.ifs import IfsClient, Page
from ml_connector.serve import ServerHandle

from .conftest import PO_SET, SimControl, connection, start

N = 10_000
PAGE = 1_000


@pytest.fixture(scope="module", params=[True, False], ids=["nextlink", "keyset"])
def big(request: pytest.FixtureRequest) -> Iterator[tuple[ServerHandle, SimControl, bool]]:
    _app, handle = start(purchase_orders=N, work_orders=1, next_links=request.param)
    control = SimControl(handle.url)
    control.faults(rate_limit_per_minute=None)
    yield handle, control, request.param
    control.http.close()
    handle.stop()


@pytest.fixture
def client(big: tuple[ServerHandle, SimControl, bool]) -> Iterator[IfsClient]:
    handle, control, _ = big
    control.clock(0)
    with IfsClient.from_connection(connection(handle.url)) as c:
        yield c


def _page_requests(control: SimControl) -> list[dict[str, Any]]:
    return [
        r for r in control.requests()["requests"] if r["method"] == "GET" and r["path"].endswith("PurchaseOrderSet")
    ]


def _check_mode(pages: list[Page], next_links: bool) -> None:
    assert all(p.keyset != next_links for p in pages[1:])


def test_all_records_exactly_once(client: IfsClient, big: tuple[ServerHandle, SimControl, bool]) -> None:
    _, control, next_links = big
    control.clear_requests()
    pages = list(client.iter_pages(PO_SET, select=["OrderNo", "VendorNo"], key_fields=["OrderNo"], page_size=PAGE))
    keys = Counter(r["OrderNo"] for p in pages for r in p.rows)
    assert len(keys) == client.count(PO_SET) == N
    assert max(keys.values()) == 1
    assert all(len(p.rows) <= PAGE for p in pages)
    assert sum(p.duplicates for p in pages) == 0
    _check_mode(pages, next_links)
    log = _page_requests(control)
    # with links: exactly the 10 pages; by keyset: one more request finds nothing after the last full page
    assert len(log) == (N // PAGE if next_links else N // PAGE + 1)
    assert all(r["status"] == 200 for r in log)


def test_exactly_once_while_records_change_and_token_expires(
    client: IfsClient, big: tuple[ServerHandle, SimControl, bool]
) -> None:
    _, control, next_links = big
    assert client.tokens is not None
    original = {r["OrderNo"] for r in client.iter_records(PO_SET, select="OrderNo", page_size=4999)}
    refreshes = client.tokens.refresh_count
    seen: Counter[str] = Counter()
    pages: list[Page] = []
    created: list[str] = []
    try:
        for n, page in enumerate(client.iter_pages(PO_SET, select="OrderNo", key_fields=["OrderNo"], page_size=PAGE)):
            pages.append(page)
            seen.update(r["OrderNo"] for r in page.rows)
            # between pages: users insert orders, edit seen and unseen ones, and the server clock jumps so the
            # cached token is expired on the server's side while the client still believes it valid
            created += [r["OrderNo"] for r in _records(control.create("PurchaseOrder", count=3))]
            sample = sorted(original)[n * 37 % len(original) :][:20]
            control.bulk_edit("PurchaseOrder", sample, {"Description": f"edited during page {n}"})
            control.clock((n + 1) * 400)
    finally:
        control.clock(0)
    assert original <= set(seen)
    assert all(seen[k] == 1 for k in seen)
    assert set(seen) - original <= set(created)
    assert client.tokens.refresh_count - refreshes >= len(pages) - 1
    _check_mode(pages, next_links)


def test_compound_order_keyset_and_edits_that_move_rows(
    client: IfsClient, big: tuple[ServerHandle, SimControl, bool]
) -> None:
    """Ordered by Cf_Changed_At, OrderNo: an edit moves a seen row behind the reader; it is returned only once."""
    _, control, next_links = big
    original = {r["OrderNo"] for r in client.iter_records(PO_SET, select="OrderNo", page_size=4999)}
    seen: Counter[str] = Counter()
    order: list[tuple[dt.datetime, str]] = []
    moved: list[str] = []
    pages = []
    for n, page in enumerate(
        client.iter_pages(
            PO_SET, select=["OrderNo", "Cf_Changed_At"], orderby="Cf_Changed_At", key_fields=["OrderNo"], page_size=PAGE
        )
    ):
        pages.append(page)
        for row in page.rows:
            seen[row["OrderNo"]] += 1
            order.append((dt.datetime.fromisoformat(row["Cf_Changed_At"].replace("Z", "+00:00")), row["OrderNo"]))
        if n < 3:
            batch = [r["OrderNo"] for r in page.rows[:5]]  # already returned; the edit moves them to the end
            moved += batch
            control.bulk_edit("PurchaseOrder", batch, {"Description": "moved"})
    assert original <= set(seen)
    assert max(seen.values()) == 1
    assert order == sorted(order)  # the client asked for a total order and kept it across pages
    assert sum(p.duplicates for p in pages) == len(moved) == 15  # the moved rows came back once more, dropped
    _check_mode(pages, next_links)


def _records(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, dict):
        for name in ("records", "value", "created"):
            if isinstance(result.get(name), list):
                return list(result[name])
    assert isinstance(result, list), result
    return list(result)
