"""The failed queue grouped by reason (issue 11): counts, the values behind them, the fix, and a filter to the
records of one reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from integration.web.support import ADMIN_TOKEN, StatementCounter, make_connector

from ml_connector.engine import Connector
from ml_connector.web import create_app

SITE = "http://127.0.0.1:8080"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path, admin_token=ADMIN_TOKEN)
    with c.store.transaction() as tx:
        for i, project in enumerate(["PRJ-1005", "PRJ-1005", "PRJ-1005", "PRJ-1007", "<b>PRJ</b>"]):
            tx.records.insert(
                "purchase_orders",
                f"PO-{i}",
                state="parked",
                reason="unmapped_project",
                reason_value=project,
                last_error=f"mapping failed: no project mapped for ProjectId={project!r}",
            )
        tx.records.insert("purchase_orders", "PO-OLD", state="parked", last_error="from before reasons")
        tx.records.insert("work_orders", "9911", state="retry", reason="unavailable", reason_value="jira")
        tx.records.insert("purchase_orders", "PO-OK", state="synced", reason="unmapped_project", reason_value="X")
    yield c
    c.store.close()


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    with TestClient(create_app(connector), base_url=SITE, follow_redirects=False, headers={"Origin": SITE}) as c:
        yield c


def _rows(html: str) -> dict[tuple[str, str], str]:
    return {
        (m.group(2), m.group(1)): m.group(3)
        for m in re.finditer(r'<tr data-reason="([^"]+)" data-flow="([^"]+)">(.*?)</tr>', html, re.S)
    }


def test_reasons_view_groups_with_counts_values_and_the_fix(client: TestClient, connector: Connector) -> None:
    counter = StatementCounter(connector.store)
    try:
        with counter.counting() as statements:
            page = client.get("/failed/reasons", headers=HEADERS)
    finally:
        counter.close()
    assert page.status_code == 200
    on_records = [s for s in statements if "FROM records" in str(s[0])]  # not the background inbox check
    assert len(on_records) == 1 and "GROUP BY" in str(on_records[0][0])  # one grouped query, whatever the size
    rows = _rows(page.text)
    assert set(rows) == {
        ("purchase_orders", "unmapped_project"),
        ("purchase_orders", "other"),
        ("work_orders", "unavailable"),
    }
    project = rows[("purchase_orders", "unmapped_project")]
    assert '<td class="num">5</td>' in project  # the synced record with an old reason is not in the queue
    assert 'PRJ-1005 <span class="muted">&times; 3</span>' in project and "&times; 1" in project
    assert "&lt;b&gt;PRJ&lt;/b&gt;" in project and "<b>PRJ</b>" not in project
    assert "under flows[0].mapping.project.map" in project
    assert 'href="/failed?flow=purchase_orders&amp;reason=unmapped_project"' in project
    assert "No project mapped" in project or "no project mapped" in project
    assert '<td class="num">1</td>' in rows[("purchase_orders", "other")]


def test_reasons_view_filters_by_flow(client: TestClient) -> None:
    page = client.get("/failed/reasons?flow=work_orders", headers=HEADERS)
    assert set(_rows(page.text)) == {("work_orders", "unavailable")}


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("reason=unmapped_project", {"PO-0", "PO-1", "PO-2", "PO-3", "PO-4"}),
        ("reason=unmapped_project&flow=work_orders", set()),
        ("reason=other", {"PO-OLD"}),  # stored before reasons existed
        ("reason=unavailable", {"9911"}),
        ("reason=no_such_reason", {"PO-0", "PO-1", "PO-2", "PO-3", "PO-4", "PO-OLD", "9911"}),  # ignored
    ],
)
def test_failed_queue_filters_by_reason(client: TestClient, query: str, shown: set[str]) -> None:
    page = client.get(f"/failed?{query}", headers=HEADERS)
    assert page.status_code == 200
    assert set(re.findall(r'data-key="([^"]+)"', page.text)) == shown
    if "no_such" not in query:
        assert 'id="clear-reason"' in page.text
    assert 'id="group-by-reason"' in page.text
