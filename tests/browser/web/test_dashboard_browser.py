"""The dashboard in Debian's Chromium (Playwright with executable_path; never a downloaded browser): login with the
admin token, a record's audit trail, Replay of a parked record, Pause and Resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
