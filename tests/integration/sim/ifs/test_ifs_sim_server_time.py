"""Modelled server time of IFS reads: it grows with the rows returned and does not hold up other requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from ml_connector.sim import servertime

from .conftest import PO, Ifs, po_url


def _timed_get(ifs: Ifs, path: str, params: dict[str, str] | None = None) -> tuple[int, float, int]:
    """(status, seconds, rows) of one read on its own connection."""
    with httpx2.Client(base_url=ifs.url, timeout=30) as http:
        started = time.perf_counter()
        response = http.get(f"/main/ifsapplications/projection/v1/{path}", params=params, headers=ifs.headers())
        seconds = time.perf_counter() - started
    body = response.json()
    return response.status_code, seconds, len(body.get("value", [body]))


def test_reads_take_server_time_by_rows(ifs: Ifs) -> None:
    assert _timed_get(ifs, PO, {"$top": "100"})[1] < 0.05  # no profile: no server time
    ifs.sim.set_faults(server_time_profile="realistic")
    status, seconds, rows = _timed_get(ifs, PO, {"$top": "100"})
    assert status == 200 and rows == 100
    assert seconds >= servertime.server_seconds("realistic", "ifs.read", 100)
    status, seconds, _ = _timed_get(ifs, PO, {"$top": "200"})
    assert seconds >= servertime.server_seconds("realistic", "ifs.read", 200)
    key = ifs.get(PO, {"$top": "1", "$select": "OrderNo"}).json()["value"][0]["OrderNo"]
    status, seconds, _ = _timed_get(ifs, po_url(key))
    assert status == 200 and seconds >= servertime.server_seconds("realistic", "ifs.read", 1)
    status, seconds, _ = _timed_get(ifs, PO, {"$filter": "NoSuchField eq 1"})
    assert status == 400 and seconds < servertime.server_seconds("realistic", "ifs.read", 0)  # a refusal: no work


def test_slow_reads_do_not_block_each_other(ifs: Ifs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight reads of half a second each, sent at once, finish in about half a second, not four."""
    monkeypatch.setitem(servertime.PROFILES, "realistic", {"ifs.read": servertime.Cost(0.5)})
    ifs.sim.set_faults(server_time_profile="realistic")
    with ThreadPoolExecutor(8) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda _: _timed_get(ifs, PO, {"$top": "5"}), range(8)))
        elapsed = time.perf_counter() - started
    assert all(status == 200 and seconds >= 0.5 for status, seconds, _ in results)
    assert elapsed < 8 * 0.5 / 2, elapsed
