"""The dashboard in Debian's Chromium (Playwright with executable_path; never a downloaded browser): login with the
admin token, a record's audit trail, Replay of a parked record, Pause and Resume; Jira deep links, select-all in the
failed queue, field-level audit changes, the IFS source row, run durations and human times, the CSV export link, and
every page at 1280x800 and 375x812 without sideways scrolling (screenshots in test-artifacts/screenshots/)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import require_import, unavailable
from integration.web.support import ADMIN_TOKEN, READ_TOKEN, Sims, make_connector, simulators, wait_for

from ml_connector.engine import Connector, OutboundSync
from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.store import AuditEvent
from ml_connector.web import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    unavailable(f"{CHROMIUM} is missing; run scripts/install-browser.sh (Debian's chromium package)")

sync_api = require_import("playwright.sync_api")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sims, Connector, ServerHandle]]:
    with simulators(purchase_orders=30, work_orders=10) as sims:
        connector = make_connector(
            tmp_path_factory.mktemp("browser"),
            ifs_url=sims.ifs.url,
            jira_url=sims.jira.url,
            admin_token=ADMIN_TOKEN,
            tweak=lambda data: data["web"].update(read_token=READ_TOKEN),
        )
        OutboundSync(connector, connector.config.flow("purchase_orders")).run()
        web = serve_in_thread(create_app(connector))
        try:
            yield sims, connector, web
        finally:
            web.stop()
            connector.close()
            connector.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Any, world: tuple[Sims, Connector, ServerHandle]) -> Iterator[Any]:
    """A logged-in page."""
    _, _, web = world
    context = browser.new_context(base_url=web.url)
    p = context.new_page()
    p.set_default_timeout(10_000)
    p.goto("/")
    assert "/login" in p.url
    p.fill("#token", ADMIN_TOKEN)
    p.click("button[type=submit]")
    p.wait_for_url(f"{web.url}/")
    yield p
    context.close()


def test_login_with_token(browser: Any, world: tuple[Sims, Connector, ServerHandle]) -> None:
    _, _, web = world
    context = browser.new_context(base_url=web.url)
    p = context.new_page()
    p.goto("/failed")
    assert "/login" in p.url
    p.fill("#token", "wrong-token")
    p.click("button[type=submit]")
    assert "not valid" in p.inner_text("[role=alert]")
    p.fill("#token", ADMIN_TOKEN)
    p.click("button[type=submit]")
    p.wait_for_url(f"{web.url}/failed")
    assert p.inner_text("h1").startswith("Failed queue")
    cookie = next(c for c in context.cookies() if c["name"] == "mlc_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in cookie["value"]
    p.goto("/")
    assert "Operational" in p.inner_text("[data-system='Jira Cloud']")
    p.click("text=Log out")
    p.wait_for_url("**/login")
    context.close()


def test_record_page_shows_the_audit_trail(page: Any, world: tuple[Sims, Connector, ServerHandle]) -> None:
    _, connector, _ = world
    record = connector.store.records.linked("purchase_orders")[0]
    page.goto("/records")
    page.fill("input[name=q]", record.ifs_key)
    page.click("text=Search")
    page.click(f"a[href='/records/{record.id}']")
    page.wait_for_url(f"**/records/{record.id}")
    events = page.locator("tr.audit-event").evaluate_all("rows => rows.map(r => r.dataset.event)")
    assert "created" in events
    assert events == [e.event for e in connector.store.audit.trail(record.id)]
    assert record.ifs_key in page.inner_text("#payload")
    assert page.inner_text("#record-state") == "synced"


def test_replay_moves_a_parked_record_out_of_the_failed_queue(
    page: Any, world: tuple[Sims, Connector, ServerHandle]
) -> None:
    _, connector, _ = world
    record = connector.store.records.linked("purchase_orders")[1]
    with connector.store.transaction() as tx:  # a record that failed for good, as the engine parks it
        tx.records.update(record.id, state="parked", attempts=5, error_class="Rejected", last_error="400 from Jira")
        tx.audit.add(record.id, AuditEvent("failed", outcome="error", message="parked after 5 attempts"))
    page.goto("/failed")
    row = page.locator(f"tr[data-record='{record.id}']")
    assert row.count() == 1
    row.locator("button.replay-one").click()
    page.wait_for_url("**/failed?msg=*")
    assert "Re-queued 1 record" in page.inner_text("[role=status]")

    def replayed() -> bool:
        current = connector.store.records.by_id(record.id)
        return current is not None and current.state == "synced"

    assert wait_for(replayed, timeout=10)
    page.goto("/failed")
    assert page.locator(f"tr[data-record='{record.id}']").count() == 0
    page.goto(f"/records/{record.id}")
    events = page.locator("tr.audit-event").evaluate_all("rows => rows.map(r => r.dataset.event)")
    assert "replayed" in events[events.index("failed") :]


def test_pause_and_resume(page: Any, world: tuple[Sims, Connector, ServerHandle]) -> None:
    _, connector, _ = world
    row = page.locator("tr[data-flow='work_orders']")
    assert row.locator(".flow-state").inner_text().startswith("Active")
    row.locator("text=Pause").click()
    page.wait_for_url("**/?msg=*")
    row = page.locator("tr[data-flow='work_orders']")
    assert row.locator(".flow-state").inner_text().startswith("Paused")
    assert connector.store.controls.get("work_orders")["paused"] is True
    row.locator("text=Resume").click()
    page.wait_for_url("**/?msg=*")
    assert page.locator("tr[data-flow='work_orders'] .flow-state").inner_text().startswith("Active")
    assert connector.store.controls.get("work_orders")["paused"] is False
    page.locator("tr[data-flow='work_orders']").locator("text=Sync now").click()
    page.wait_for_url("**/?msg=*")
    assert connector.store.controls.get("work_orders")["sync_requested_at"] is not None


def test_read_only_sign_in_and_no_policy_violations(browser: Any, world: tuple[Sims, Connector, ServerHandle]) -> None:
    """The read token sees the pages without action buttons; the CSP (no inline script or style) breaks nothing."""
    _, connector, web = world
    context = browser.new_context(base_url=web.url)
    p = context.new_page()
    p.set_default_timeout(10_000)
    problems: list[str] = []
    p.on("console", lambda msg: problems.append(msg.text) if msg.type in {"error", "warning"} else None)
    p.goto("/login")
    p.fill("#token", READ_TOKEN)
    p.click("button[type=submit]")
    p.wait_for_url(f"{web.url}/")
    assert p.locator("text=read-only").count() >= 1
    assert p.locator("button", has_text="Sync now").count() == 0
    assert p.locator("button", has_text="Pause").count() == 0
    p.goto("/failed")
    assert p.locator("#replay-all").count() == 0
    background = p.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert background == "rgb(36, 41, 47)", "the external stylesheet did not apply"
    assert not [m for m in problems if "Content Security Policy" in m], problems
    assert connector.store.controls.get("purchase_orders")["paused"] is False
    context.close()


# -- issue 11: deep links, select-all, readable audit, source row, durations, CSV, layout at two widths ------------

REPO = Path(__file__).resolve().parents[3]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 812}}
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


def _artifacts() -> Path:
    """Where screenshots go: $ML_CONNECTOR_TEST_ARTIFACTS, else test-artifacts/ at the repository root."""
    base = Path(os.environ.get("ML_CONNECTOR_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder = base / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _po(connector: Connector, index: int) -> Any:
    return sorted(connector.store.records.linked("purchase_orders"), key=lambda r: r.id)[index]


@pytest.fixture(scope="module")
def changed(world: tuple[Sims, Connector, ServerHandle]) -> dict[str, Any]:
    """One purchase order edited in IFS (its summary changes) and one whose first line gets a cost center the
    select field's value map lacks (it cannot be mapped, so it is parked), then a second sync by the real engine."""
    sims, connector, _ = world
    edited, broken = _po(connector, 10), _po(connector, 11)
    line = quote(json.dumps([broken.ifs_key, "1", "1"]), safe="")
    sims.ifs_control("PATCH", f"records/PurchaseOrderLine/{line}", json={"CodeB": "CC999"})
    for record, description in ((edited, "Edited in IFS"), (broken, "Bumped in IFS")):
        sims.ifs_control(
            "PATCH", f"records/PurchaseOrder/{quote(record.ifs_key, safe='')}", json={"Description": description}
        )
    OutboundSync(connector, connector.config.flow("purchase_orders")).run()
    broken_now = connector.store.records.by_id(broken.id)
    assert broken_now is not None and broken_now.state == "parked", broken_now
    return {"edited": connector.store.records.by_id(edited.id), "broken": broken_now}


def test_every_jira_key_links_to_the_issue_in_a_new_tab(
    page: Any, world: tuple[Sims, Connector, ServerHandle], changed: dict[str, Any]
) -> None:
    sims, _, _ = world
    record = changed["edited"]
    for path in ("/records", "/failed", f"/records/{record.id}"):
        page.goto(path)
        links = page.locator("a.jira").evaluate_all(
            "links => links.map(a => [a.textContent, a.getAttribute('href'), a.target, a.rel])"
        )
        if path != "/failed":
            assert links, path
        for key, href, target, rel in links:
            assert href == f"{sims.jira.url}/browse/{key}", (path, key, href)
            assert target == "_blank" and "noopener" in rel.split()
    page.goto(f"/records/{record.id}")
    assert page.inner_text("#record-jira").startswith(record.jira_key)
    # Where a record has no issue yet, there is nothing to link: a dash, not a link to /browse/None.
    page.goto("/records?state=parked")
    assert "/browse/None" not in page.content()


def test_select_all_replays_the_selection(page: Any, world: tuple[Sims, Connector, ServerHandle]) -> None:
    _, connector, _ = world
    parked = [_po(connector, i) for i in (20, 21, 22)]
    with connector.store.transaction() as tx:
        for r in parked:
            tx.records.update(r.id, state="parked", attempts=5, error_class="Rejected", last_error="400 from Jira")
    page.goto("/failed")
    boxes = page.locator("input.select-one")
    total = boxes.count()
    assert total >= 3
    page.check("input.select-all")
    assert boxes.evaluate_all("bs => bs.every(b => b.checked)")
    page.uncheck("input.select-all")
    assert boxes.evaluate_all("bs => bs.every(b => !b.checked)")
    for r in parked[:2]:
        page.check(f"tr[data-record='{r.id}'] input.select-one")
    assert page.evaluate("document.querySelector('input.select-all').indeterminate") is (total > 2)
    page.click("#replay-selected")
    page.wait_for_url("**/failed?msg=*")
    assert "Re-queued 2 record" in page.inner_text("[role=status]")

    def replayed() -> bool:
        states = [connector.store.records.by_id(r.id).state for r in parked[:2]]  # type: ignore[union-attr]
        return states == ["synced", "synced"]

    assert wait_for(replayed, timeout=15)
    third = connector.store.records.by_id(parked[2].id)
    assert third is not None and third.state == "parked", "an unselected record was replayed"
    # Select-all then Replay selected re-queues every record of the page.
    page.goto("/failed")
    page.check("input.select-all")
    page.click("#replay-selected")
    page.wait_for_url("**/failed?msg=*")
    assert "Re-queued" in page.inner_text("[role=status]")
    assert wait_for(lambda: connector.store.records.by_id(parked[2].id).state != "parked", timeout=15)  # type: ignore[union-attr]


def test_audit_trail_shows_changed_fields_by_name(page: Any, changed: dict[str, Any]) -> None:
    record = changed["edited"]
    page.goto(f"/records/{record.id}")
    mapped = page.locator("tr.audit-event[data-event='mapped']:has(ul.changes)")
    assert mapped.count() == 2
    latest = mapped.nth(1).locator("ul.changes li").all_inner_texts()
    summary = [c for c in latest if c.startswith("Summary:")]
    assert len(summary) == 1 and summary[0].endswith("Edited in IFS"), latest
    assert not [c for c in latest if c.startswith("Project:")], "an unchanged field is listed"
    first = mapped.nth(0).locator("ul.changes li").all_inner_texts()
    assert any(c.startswith("Supplier: — → ") for c in first), first  # a custom field, by its name
    assert not any("customfield_" in c for c in first + latest)
    raw = mapped.nth(1).locator("details")
    assert not raw.evaluate("d => d.open") and not raw.locator("pre").is_visible()
    raw.locator("summary").click()
    assert '"draft"' in raw.locator("pre").inner_text()


def test_a_parked_record_shows_the_ifs_row_that_failed(page: Any, changed: dict[str, Any]) -> None:
    record = changed["broken"]
    page.goto(f"/records/{record.id}")
    assert page.inner_text("#record-state") == "parked"
    source = page.inner_text("#source")
    assert '"Description": "Bumped in IFS"' in source and record.ifs_key in source
    assert "@odata.etag" not in source
    assert "no Cost Center:select mapped for line.CodeB='CC999'" in page.inner_text("#record")


def test_runs_show_durations_and_human_times(page: Any, world: tuple[Sims, Connector, ServerHandle]) -> None:
    page.goto("/runs")
    durations = page.locator("td.duration").all_inner_texts()
    assert durations and all(re.fullmatch(r"\d+ (s|min( \d+ s)?)|running", d) for d in durations), durations
    times = page.locator("table.runs time")
    assert times.count() >= 1
    assert re.fullmatch(r"just now|\d+ (s|min)( \d+ s)? ago", times.first.inner_text())
    assert re.match(ISO, times.first.get_attribute("title") or "")
    page.goto("/")
    cursor = page.locator("tr[data-flow='purchase_orders'] td.cursor")
    text = cursor.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
    assert re.match(ISO, cursor.locator("time").get_attribute("title") or "")
    assert not re.search(r"\.\d{6}", page.inner_text("main")), "a raw timestamp with microseconds is shown"


def test_csv_export_link_follows_the_filters(page: Any, changed: dict[str, Any]) -> None:
    page.goto("/records?state=parked&flow=purchase_orders")
    link = page.locator("#csv-export")
    assert link.get_attribute("href") == "/records.csv?flow=purchase_orders&state=parked"
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text().splitlines()
    assert lines[0].startswith("flow,ifs_key,state,")
    assert any(changed["broken"].ifs_key in line for line in lines[1:])
    assert all(",parked," in line for line in lines[1:])


def _pages(connector: Connector, changed: dict[str, Any]) -> dict[str, str]:
    return {
        "overview": "/",
        "runs": "/runs",
        "records": "/records",
        "failed": "/failed",
        "record": f"/records/{changed['edited'].id}",
        "record-parked": f"/records/{changed['broken'].id}",
    }


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_every_page_fits_the_width_and_is_photographed(
    browser: Any, world: tuple[Sims, Connector, ServerHandle], changed: dict[str, Any], viewport: str
) -> None:
    """No page scrolls sideways at a phone's width or a laptop's (wide tables scroll inside their own box)."""
    _, connector, web = world
    size = VIEWPORTS[viewport]
    context = browser.new_context(base_url=web.url, viewport=size)
    p = context.new_page()
    p.set_default_timeout(10_000)
    folder = _artifacts()
    p.goto("/login")
    _fits(p, "login", viewport)
    p.screenshot(path=str(folder / f"login-{viewport}.png"), full_page=True)
    p.fill("#token", ADMIN_TOKEN)
    p.click("button[type=submit]")
    p.wait_for_url(f"{web.url}/")
    for name, path in _pages(connector, changed).items():
        p.goto(path)
        _fits(p, name, viewport)
        p.screenshot(path=str(folder / f"{name}-{viewport}.png"), full_page=True)
        assert (folder / f"{name}-{viewport}.png").stat().st_size > 1000
    context.close()


def _fits(p: Any, name: str, viewport: str) -> None:
    scroll, inner = p.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{name} at {viewport}: page is {scroll}px wide in a {inner}px window"


def test_buttons_share_one_style(page: Any) -> None:
    page.goto("/records")
    styles = page.locator("main button, main a.btn").evaluate_all(
        "els => els.map(e => { const s = getComputedStyle(e);"
        " return [s.borderRadius, s.fontSize, s.paddingTop, s.borderTopStyle].join(' '); })"
    )
    assert len(styles) >= 2 and len(set(styles)) == 1, styles
