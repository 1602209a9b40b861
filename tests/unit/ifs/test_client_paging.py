"""Paging safeguards against a deliberately misbehaving far side (scripted with httpx2.MockTransport).

The well-behaved cases (next links, keyset fallback, changes between pages) run against the simulator in
tests/integration/ifs; these cover servers the simulator never imitates: looping links, foreign links, filters
ignored, page sizes not confirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import PermanentError
from ml_connector.http import ApiSession, build_client
from ml_connector.ifs import IfsClient

from .test_metadata import CSDL

BASE = "http://ifs.test/main/ifsapplications/projection/v1/"
PO = "PurchaseOrderHandling.svc/PurchaseOrderSet"
SETTINGS = HttpSettings(max_attempts=1)


def make(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> tuple[IfsClient, list[httpx2.Request]]:
    sent: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        if request.url.path.endswith("/$metadata"):
            return httpx2.Response(200, content=CSDL.encode(), headers={"Content-Type": "application/xml"})
        return handler(request)

    client = build_client(BASE, SETTINGS, transport=httpx2.MockTransport(record))
    return IfsClient(ApiSession(client, system="ifs", settings=SETTINGS), **kwargs), sent


def rows(*numbers: int) -> list[dict[str, Any]]:
    return [{"OrderNo": f"PO-{n:03d}", "Cf_Changed_At": f"2025-01-01T00:00:{n % 60:02d}Z"} for n in numbers]


def query(request: httpx2.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


def test_repeating_next_link_stops() -> None:
    link = BASE + PO + "?$skiptoken=same"
    client, sent = make(lambda r: httpx2.Response(200, json={"value": rows(len(sent)), "@odata.nextLink": link}))
    with pytest.raises(PermanentError, match="repeats"):
        list(client.iter_pages(PO, key_fields=["OrderNo"], page_size=1))
    assert len(sent) == 2


def test_a_page_of_rows_moved_behind_the_reader_is_passed_over_not_taken_for_a_loop() -> None:
    # Ordered by Cf_Changed_At: rows 1 and 2 were edited after page 1 returned them, so page 2 holds only them (at
    # their new time); page 3 is the rest. A server not moving on would end page 2 where page 1 ended.
    moved = [{"OrderNo": "PO-001", "Cf_Changed_At": "2025-01-01T00:01:00Z"},
             {"OrderNo": "PO-002", "Cf_Changed_At": "2025-01-01T00:01:01Z"}]
    answers = iter([rows(1, 2), moved, [{"OrderNo": "PO-003", "Cf_Changed_At": "2025-01-01T00:01:02Z"}], []])

    def page(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"value": next(answers)})

    client, _ = make(page)
    pages = list(client.iter_pages(PO, orderby="Cf_Changed_At", key_fields=["OrderNo"], page_size=2))
    assert [r["OrderNo"] for p in pages for r in p.rows] == ["PO-001", "PO-002", "PO-003"]
    assert [p.duplicates for p in pages] == [0, 2, 0, 0]  # the last, empty page ends it


def test_a_server_going_round_two_pages_with_fresh_links_stops() -> None:
    answers = [rows(1, 2), rows(3, 4)]

    def page(request: httpx2.Request) -> httpx2.Response:
        n = len(sent)
        return httpx2.Response(200, json={"value": answers[n % 2], "@odata.nextLink": f"{BASE}{PO}?$skiptoken={n}"})

    client, sent = make(page)
    with pytest.raises(PermanentError, match="ends where an earlier page ended"):
        list(client.iter_pages(PO, key_fields=["OrderNo"], page_size=2))
    assert len(sent) == 3  # pages 1, 2 and the first repeat of page 1


def test_next_link_to_another_origin_is_not_followed() -> None:
    client, sent = make(
        lambda r: httpx2.Response(200, json={"value": rows(1), "@odata.nextLink": "http://evil.test/steal?x=1"})
    )
    with pytest.raises(PermanentError, match="leaves"):
        list(client.iter_pages(PO, key_fields=["OrderNo"], page_size=1))
    assert [r.url.host for r in sent] == ["ifs.test"]


def test_server_ignoring_keyset_filter_stops_instead_of_looping() -> None:
    client, sent = make(lambda r: httpx2.Response(200, json={"value": rows(1, 2)}))
    with pytest.raises(PermanentError, match="repeats only rows"):
        list(client.iter_pages(PO, key_fields=["OrderNo"], page_size=2))
    assert len([r for r in sent if "$metadata" not in r.url.path]) == 2


def test_keyset_request_uses_compound_typed_condition_and_keeps_filter_and_order() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        q = query(request)
        if "gt" not in q["$filter"]:
            return httpx2.Response(
                200, json={"value": rows(1, 2)}, headers={"Preference-Applied": "odata.maxpagesize=2"}
            )
        return httpx2.Response(200, json={"value": rows(3)}, headers={"Preference-Applied": "odata.maxpagesize=2"})

    client, sent = make(handler)
    pages = list(
        client.iter_pages(
            PO,
            filter="VendorNo eq 'V1' or VendorNo eq 'V2'",
            orderby="Cf_Changed_At",
            key_fields=["OrderNo"],
            page_size=2,
        )
    )
    assert [len(p.rows) for p in pages] == [2, 1]
    assert [p.keyset for p in pages] == [False, True]
    data = [r for r in sent if "$metadata" not in r.url.path]
    assert data[0].headers["Prefer"] == "odata.maxpagesize=2"
    assert query(data[0])["$orderby"] == "Cf_Changed_At,OrderNo"
    assert query(data[1])["$filter"] == (
        "(VendorNo eq 'V1' or VendorNo eq 'V2') and ((Cf_Changed_At gt 2025-01-01T00:00:02Z) or "
        "((Cf_Changed_At eq 2025-01-01T00:00:02Z) and (OrderNo gt 'PO-002')))"
    )
    assert "$skip=" not in str(data[1].url)
    assert "%24" not in str(data[1].url.raw_path)  # option names keep their literal $


def test_short_page_ends_only_when_the_server_confirmed_the_page_size() -> None:
    confirmed, sent = make(
        lambda r: httpx2.Response(200, json={"value": rows(1)}, headers={"Preference-Applied": "odata.maxpagesize=5"})
    )
    assert len(list(confirmed.iter_records(PO, key_fields=["OrderNo"], page_size=5))) == 1
    assert len(sent) == 1

    def capped(request: httpx2.Request) -> httpx2.Response:  # ignores our preference, cuts at 2, sends no link
        q = query(request)
        start = 1 if "gt" not in q.get("$filter", "") else int(unquote(q["$filter"]).rsplit("PO-", 1)[1][:3]) + 1
        return httpx2.Response(200, json={"value": rows(*range(start, min(start + 2, 6)))})

    probing, sent = make(capped)
    got = list(probing.iter_records(PO, key_fields=["OrderNo"], page_size=5))
    assert [r["OrderNo"] for r in got] == [f"PO-{n:03d}" for n in range(1, 6)]


def test_a_smaller_first_page_is_asked_for_once_then_the_page_size() -> None:
    """Linked pages: the nextLink is followed as given, only the Prefer header of the first request differs."""

    def linked(request: httpx2.Request) -> httpx2.Response:
        size = int(request.headers["Prefer"].split("=")[1])
        start = int(query(request).get("$skiptoken", "1"))
        numbers = range(start, min(start + size, 12))
        link = f"{BASE}{PO}?$skiptoken={start + size}" if start + size < 12 else None
        body: dict[str, Any] = {"value": rows(*numbers), **({"@odata.nextLink": link} if link else {})}
        return httpx2.Response(200, json=body, headers={"Preference-Applied": f"odata.maxpagesize={size}"})

    client, sent = make(linked)
    pages = list(client.iter_pages(PO, key_fields=["OrderNo"], page_size=4, first_page_size=1))
    assert [len(p.rows) for p in pages] == [1, 2, 4, 4]  # each page twice the one before, up to the page size
    assert [r.headers["Prefer"] for r in sent] == [f"odata.maxpagesize={n}" for n in (1, 2, 4, 4)]


def test_a_short_first_page_ends_the_read_only_when_shorter_than_asked_for() -> None:
    """Keyset paging (no links): a full small first page is followed by larger pages, not taken as the end."""

    def keyset(request: httpx2.Request) -> httpx2.Response:
        size = int(request.headers["Prefer"].split("=")[1])
        q = query(request)
        start = 1 if "gt" not in q.get("$filter", "") else int(unquote(q["$filter"]).rsplit("PO-", 1)[1][:3]) + 1
        return httpx2.Response(
            200,
            json={"value": rows(*range(start, min(start + size, 9)))},
            headers={"Preference-Applied": f"odata.maxpagesize={size}"},
        )

    client, sent = make(keyset)
    got = list(client.iter_pages(PO, key_fields=["OrderNo"], page_size=5, first_page_size=2))
    assert [len(p.rows) for p in got] == [2, 4, 2]  # the last, short of the 4 the server confirmed: the end
    assert [r.headers["Prefer"] for r in sent if "$metadata" not in r.url.path] == [
        "odata.maxpagesize=2",
        "odata.maxpagesize=4",
        "odata.maxpagesize=5",
    ]


def test_key_chunks_are_as_full_as_the_encoded_filter_length_allows() -> None:
    """The length counted is the length sent: 100 keys of 34 encoded characters each ("(OrderNo%20eq%20'PO-0001')"
    and "%20or%20") fill two requests of 1,800, not three; the first holds as many as fit."""
    filters: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        filters.append(str(request.url.raw_path, "ascii").split("$filter=", 1)[1].split("&")[0])
        return httpx2.Response(200, json={"value": []}, headers={"Preference-Applied": "odata.maxpagesize=1000"})

    client, _ = make(handler, max_filter_chars=1800)
    client.children_by_parent(PO, "OrderNo", [f"PO-{n:04d}" for n in range(100)], key_fields=["OrderNo"])
    assert len(filters) == 2
    assert all(len(f) <= 1800 for f in filters)
    assert [f.count("%20or%20") + 1 for f in filters] == [52, 48]  # 52 x 34 = 1,768: a 53rd would not fit


def test_get_many_by_keys_chunks_by_encoded_filter_length() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        wanted = [part.split("'")[1] for part in query(request)["$filter"].split(" or ")]
        return httpx2.Response(
            200,
            json={"value": [{"OrderNo": w, "@odata.etag": f'W/"{w}"'} for w in wanted if w != "missing"]},
            headers={"Preference-Applied": "odata.maxpagesize=1000"},
        )

    client, sent = make(handler, max_filter_chars=300)
    keys = [{"OrderNo": f"PO-{n:04d} &#/%"} for n in range(40)] + [{"OrderNo": "missing"}]
    found = client.get_many_by_keys(PO, keys)
    assert len(found) == 40
    assert found[("PO-0007 &#/%",)][1] == 'W/"PO-0007 &#/%"'
    assert 5 <= len(sent) <= 12
    assert all(len(str(r.url.raw_path).split("$filter=", 1)[1].split("&")[0]) <= 300 for r in sent)
