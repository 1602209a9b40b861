"""The records CSV export, Jira deep links and the readable audit trail over HTTP with a real SQLite store.

CSV: the records page's filters, RFC 4180 quoting, formula cells neutralised, secrets redacted, streamed a keyset
page at a time (statements grow with pages, never with rows), and only for a signed-in visitor."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml_connector.engine import Connector
from ml_connector.records_csv import COLUMNS
from ml_connector.store import AuditEvent
from ml_connector.web import create_app
from ml_connector.web.routes import pages

from .support import ADMIN_TOKEN, StatementCounter, make_connector

SITE = "http://127.0.0.1:8080"
JIRA = "https://acme.atlassian.example"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INJECTION = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path, admin_token=ADMIN_TOKEN, jira_url=JIRA)
    with c.store.transaction() as tx:
        for i in range(10):
            tx.records.insert("purchase_orders", f"PO-{i:03d}", state="synced", jira_key=f"PROC-{i}", jira_id=str(i))
        tx.records.insert("purchase_orders", INJECTION, state="parked", last_error='bad "quote", comma\nnew line')
        tx.records.insert("purchase_orders", "@SUM(1)", state="retry", last_error=f"token {ADMIN_TOKEN} leaked")
        tx.records.insert("work_orders", "-42", state="parked", last_error="+1 from Jira")
    yield c
    c.store.close()


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    with TestClient(create_app(connector), base_url=SITE, follow_redirects=False, headers={"Origin": SITE}) as c:
        yield c


def _rows(text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == list(COLUMNS)
    return [dict(zip(COLUMNS, row, strict=True)) for row in reader]


def test_export_needs_a_sign_in(client: TestClient) -> None:
    assert client.get("/records.csv").status_code in (303, 401)
    wrong = client.get("/records.csv", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code in (303, 401) and "PO-001" not in wrong.text


def test_export_quotes_neutralises_formulas_and_redacts(client: TestClient) -> None:
    response = client.get("/records.csv", headers=HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="records.csv"'
    rows = {r["ifs_key"]: r for r in _rows(response.text)}
    assert len(rows) == 13
    assert "'" + INJECTION in rows and "'@SUM(1)" in rows and "'-42" in rows
    assert not [k for k in rows if k[0] in "=+-@"]
    parked = rows["'" + INJECTION]
    assert parked["last_error"] == 'bad "quote", comma\nnew line' and parked["jira_url"] == ""
    assert ADMIN_TOKEN not in response.text and "leaked" in rows["'@SUM(1)"]["last_error"]
    assert rows["'-42"]["last_error"] == "'+1 from Jira"
    assert rows["PO-003"]["jira_url"] == f"{JIRA}/browse/PROC-3" and rows["PO-003"]["attempts"] == "0"


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("flow=work_orders", {"'-42"}),
        ("state=parked", {"'" + INJECTION, "'-42"}),
        ("flow=purchase_orders&state=retry", {"'@SUM(1)"}),
        ("q=PO-00", {f"PO-{i:03d}" for i in range(10)}),
        ("state=nonsense&flow=no_such_flow&q=PO-005", {"PO-005"}),  # unknown values: no filter, as on the page
        ("state=synced&q=nothing", set()),
    ],
)
def test_export_honours_the_records_page_filters(client: TestClient, query: str, keys: set[str]) -> None:
    response = client.get(f"/records.csv?{query}", headers=HEADERS)
    assert response.status_code == 200
    assert {r["ifs_key"] for r in _rows(response.text)} == keys


def test_export_costs_one_statement_per_page_of_records(
    client: TestClient, connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "CSV_CHUNK", 3)
    counter = StatementCounter(connector.store)
    try:
        with counter.counting() as statements:
            response = client.get("/records.csv", headers=HEADERS)
            assert len(_rows(response.text)) == 13
    finally:
        counter.close()
    # (the app's background worker may query its lease meanwhile: only the record reads count)
    selects = [s for s, _ in statements if "FROM records" in s]
    assert len(selects) == math.ceil(13 / 3), selects


def test_jira_keys_are_deep_links_on_every_list(client: TestClient) -> None:
    for path in ("/records", "/records?flow=purchase_orders&state=synced"):
        html = client.get(path, headers=HEADERS).text
        links = re.findall(
            r'<a class="jira" href="([^"]+)" target="_blank" rel="noopener noreferrer">([^<]+)</a>', html
        )
        assert len(links) == 10, path
        assert all(href == f"{JIRA}/browse/{key}" for href, key in links)
    assert (
        'href="/records.csv?flow=purchase_orders&amp;state=synced"'
        in client.get("/records?flow=purchase_orders&state=synced", headers=HEADERS).text
    )


def test_record_page_shows_changes_by_name_raw_json_in_details_and_the_source_row(
    client: TestClient, connector: Connector
) -> None:
    record = connector.store.records.find("PO-001")[0]
    draft = {"project": "PROC", "summary": "old", "custom_fields": {"Cost Center:select": "CC-100"}}
    with connector.store.transaction() as tx:
        tx.audit.add(record.id, AuditEvent("mapped", detail={"draft": draft, "source": {"OrderNo": "PO-001"}}))
        newer = {**draft, "summary": "new", "custom_fields": {"Cost Center:select": "CC-200"}}
        source = {"OrderNo": "PO-001", "Description": "<b>new</b>", "password": "hunter2"}
        tx.audit.add(record.id, AuditEvent("mapped", detail={"draft": newer, "source": source}))
    html = client.get(f"/records/{record.id}", headers=HEADERS).text
    changes = re.findall(
        r'<span class="field">([^<]+)</span>:\s*<span class="old">([^<]*)</span> → '
        r'<span class="new">([^<]*)</span>',
        html,
    )
    assert ("Summary", "old", "new") in changes
    assert ("Cost Center (select)", "CC-100", "CC-200") in changes
    assert html.count("<details><summary>raw</summary>") == 2
    source_block = html.split('<pre id="source">', 1)[1].split("</pre>", 1)[0]
    assert "&lt;b&gt;new&lt;/b&gt;" in source_block and "hunter2" not in html
    assert f'href="{JIRA}/browse/PROC-1"' in html


def test_record_page_says_when_no_source_row_is_stored(client: TestClient, connector: Connector) -> None:
    record = connector.store.records.find("PO-002")[0]
    html = client.get(f"/records/{record.id}", headers=HEADERS).text
    assert 'id="source-missing"' in html and 'id="source"' not in html
