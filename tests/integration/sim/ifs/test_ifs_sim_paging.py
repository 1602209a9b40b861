"""Server-driven paging: nextLink with a keyset skiptoken, stable under inserts and edits between pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from ml_connector.serve import serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions, create_app

from .conftest import PO, Ifs


def _page(ifs: Ifs, url: str, params: dict[str, str] | None = None, size: int = 25) -> dict[str, Any]:
    response = ifs.get(url, params, Prefer=f"odata.maxpagesize={size}")
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == f"odata.maxpagesize={size}"
    body: dict[str, Any] = response.json()
    return body


def test_default_page_is_1000_with_an_absolute_next_link(ifs: Ifs) -> None:
    ifs.sim.create("PurchaseOrder", count=1100)
    body = ifs.get(PO, {"$select": "OrderNo"}).json()
    assert len(body["value"]) == 1000
    link = body["@odata.nextLink"]
    assert link.startswith(f"{ifs.url}/main/ifsapplications/projection/v1/{PO}?")
    query = parse_qs(urlsplit(link).query)
    assert query["$select"] == ["OrderNo"] and "$skiptoken" in query
    rest = ifs.get(link).json()
    assert len(rest["value"]) == 300 and "@odata.nextLink" not in rest
    assert "Preference-Applied" not in ifs.get(PO, {"$top": "1"}).headers


def test_links_cover_every_row_once_and_carry_the_query(ifs: Ifs) -> None:
    params = {
        "$filter": "TotalAmount gt 50 and contains(Description,'a')",
        "$orderby": "Cf_Changed_At desc",
        "$select": "OrderNo,Cf_Changed_At,TotalAmount",
    }
    rows: list[dict[str, Any]] = []
    body = _page(ifs, PO, params, size=7)
    while True:
        rows.extend(body["value"])
        if "@odata.nextLink" not in body:
            break
        body = _page(ifs, body["@odata.nextLink"], size=7)
    expected = ifs.all_pages(PO, params)
    assert rows == expected
    assert len({r["OrderNo"] for r in rows}) == len(rows)
    stamps = [(r["Cf_Changed_At"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)


def test_top_spans_pages_and_stops_exactly(ifs: Ifs) -> None:
    body = _page(ifs, PO, {"$top": "60", "$select": "OrderNo"}, size=25)
    seen = [r["OrderNo"] for r in body["value"]]
    assert parse_qs(urlsplit(body["@odata.nextLink"]).query)["$top"] == ["35"]
    while "@odata.nextLink" in body:
        body = _page(ifs, body["@odata.nextLink"], size=25)
        seen.extend(r["OrderNo"] for r in body["value"])
    assert len(seen) == 60
    assert seen == [r["OrderNo"] for r in ifs.all_pages(PO)][:60]


def test_inserts_and_edits_between_pages_never_lose_or_repeat_existing_records(ifs: Ifs) -> None:
    """Ordered by key: new keys sort before and after the cursor; edits do not move a record in key order."""
    before = {r["OrderNo"] for r in ifs.all_pages(PO, {"$select": "OrderNo"})}
    seen: list[str] = []
    body = _page(ifs, PO, {"$select": "OrderNo"}, size=30)
    round_no = 0
    while True:
        seen.extend(r["OrderNo"] for r in body["value"])
        if "@odata.nextLink" not in body:
            break
        round_no += 1
        # inserts on both sides of the cursor, and an edit of an already-served and a not-yet-served record
        ifs.sim.create("PurchaseOrder", values={"OrderNo": f"PO-000000-{round_no:02d}"})
        ifs.sim.create("PurchaseOrder", values={"OrderNo": f"PO-999999-{round_no:02d}"})
        ifs.sim.edit("PurchaseOrder", seen[0], {"Description": f"edit {round_no}"})
        ifs.sim.edit("PurchaseOrder", sorted(before)[-1], {"Description": f"edit {round_no}"})
        body = _page(ifs, body["@odata.nextLink"], size=30)
    assert len(seen) == len(set(seen)), "a record was served twice"
    assert before <= set(seen), "a record that existed at the start was missed"
    new_after_cursor = {s for s in seen if s.startswith("PO-999999-")}
    assert new_after_cursor, "records inserted behind the cursor appear on later pages"
    assert not any(s.startswith("PO-000000-") for s in seen), "records inserted before the cursor are not served"


def test_cursor_order_moves_edited_records_forward(ifs: Ifs) -> None:
    """Ordered by Cf_Changed_At: a record edited mid-scan gets a newer stamp and is served again at the end."""
    params = {"$orderby": "Cf_Changed_At,OrderNo", "$select": "OrderNo,Cf_Changed_At"}
    body = _page(ifs, PO, params, size=50)
    first_page = [r["OrderNo"] for r in body["value"]]
    ifs.sim.edit("PurchaseOrder", first_page[0], {"Description": "edited after being served"})
    seen = list(first_page)
    while "@odata.nextLink" in body:
        body = _page(ifs, body["@odata.nextLink"], size=50)
        seen.extend(r["OrderNo"] for r in body["value"])
    assert seen.count(first_page[0]) == 2
    assert len(set(seen)) == 200


def test_tampered_or_foreign_skiptoken_is_400(ifs: Ifs) -> None:
    body = _page(ifs, PO, {"$orderby": "OrderDate"}, size=10)
    link = body["@odata.nextLink"]
    token = parse_qs(urlsplit(link).query)["$skiptoken"][0]
    assert ifs.get(PO, {"$orderby": "VendorNo", "$skiptoken": token}).status_code == 400
    assert ifs.get(PO, {"$skiptoken": "garbage!"}).status_code == 400


def test_child_collection_pages_with_links(ifs: Ifs) -> None:
    ifs.sim.create("PurchaseOrder", values={"OrderNo": "PO-MANY LINES"}, lines=9)
    url = "PurchaseOrderHandling.svc/PurchaseOrderSet(OrderNo='PO-MANY%20LINES')/LinePartArray"
    body = _page(ifs, url, size=4)
    lines = list(body["value"])
    while "@odata.nextLink" in body:
        body = _page(ifs, body["@odata.nextLink"], size=4)
        lines.extend(body["value"])
    assert [x["LineNo"] for x in lines] == [str(i) for i in range(1, 10)]


def test_without_next_links_the_page_is_silently_truncated() -> None:
    app = create_app(IfsSimOptions(next_links=False, max_page_size=50))
    with serve_in_thread(app) as handle:
        ifs = Ifs(handle.url, app.state.sim)
        ifs.token = ifs.login()
        body = ifs.get(PO).json()
        assert len(body["value"]) == 50 and "@odata.nextLink" not in body
        # the client pages by keyset on the key instead
        last = body["value"][-1]["OrderNo"]
        escaped = last.replace("'", "''")
        second = ifs.get(PO, {"$filter": f"OrderNo gt '{escaped}'", "$orderby": "OrderNo"}).json()["value"]
        assert second[0]["OrderNo"] > last and len(second) == 50
        ifs.http.close()
