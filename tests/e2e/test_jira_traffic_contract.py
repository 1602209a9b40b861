"""The connector's own Jira traffic, recorded by the simulator, validates against the official OpenAPI document.

Both simulators run in their own processes and the connector runs as the CLI, as an operator meets them; the Jira
simulator keeps every exchange (``--record-exchanges``) and the test validates each request and response, under
Basic and under OAuth 3LO (the ``/ex/jira/{cloudId}`` gateway form). A path the document lacks fails the test
unless it is on the contract's allow-list (``contract.spec.ALLOWED_PREFIXES``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from contract.spec import api_path, logged_exchanges, require_openapi, validate_all

from e2e.harness import REPORT_LINES, example_config, oauth_refresh_token
from e2e.procs import CliResult, SimProcess, run_cli, start_all, write_config
from ml_connector.config.models import load_config
from ml_connector.runner import WebhookManager, build_connector
from ml_connector.runner.webhooks import webhook_jql

PO_WRITEBACK = {"statuses": {"Done": {"value": "Done", "action": "PurchaseOrder_Close"}}, "categories": {}}


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimProcess, SimProcess]]:
    root = tmp_path_factory.mktemp("traffic")
    ifs, jira = start_all(
        [("ifs", root / "ifs.log", ("--rate-limit", "0")), ("jira", root / "jira.log", ("--record-exchanges",))]
    )
    try:
        yield ifs, jira
    finally:
        ifs.stop()
        jira.stop()


def _flows() -> list[dict[str, Any]]:
    """The example flows (lines, custom fields, assignee lookup); PO write-back closes the order on Done, the
    read-only work-order set takes no writes."""
    flows = example_config()["flows"]
    for flow in flows:
        if flow["name"] == "purchase_orders":
            flow["writeback"].update(PO_WRITEBACK)
        else:
            flow["writeback"] = {"enabled": False}
    return flows


def _auth(kind: str, jira_url: str) -> dict[str, Any]:
    if kind == "basic":
        return {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    return {
        "kind": "oauth",
        "client_id": "sim-oauth-client",
        "client_secret": "sim-oauth-secret",
        "refresh_token": oauth_refresh_token(jira_url),
        "auth_url": jira_url,
        "api_url": jira_url,
    }


def _run(config: Path, *args: str, codes: tuple[int, ...] = (0,)) -> CliResult:
    result = run_cli(config, *args)
    assert result.code in codes, result.brief()
    assert "Traceback (most recent call last)" not in result.output, result.brief()
    return result


def _issue_of(jira: SimProcess, order_no: str) -> dict[str, Any]:
    for issue in jira.control.call("GET", "issues")["issues"]:
        prop = (issue.get("properties") or {}).get("ml-connector") or {}
        if prop.get("flow") == "purchase_orders" and prop.get("key") == order_no:
            return dict(issue)
    raise AssertionError(f"no Jira issue for {order_no}")


def _scenario(ifs: SimProcess, jira: SimProcess, config: Path) -> None:
    """A check, creates (with lines, custom fields, assignee lookup), a parked record replayed, an edit, a
    write-back."""
    _run(config, "check")
    pos = [ifs.control.call("POST", "records/PurchaseOrder", json={"values": {"Objstate": "Released"}}) for _ in "123"]
    keys = [str(made["records"][0]["OrderNo"]) for made in pos]

    def edit(key: str, changes: dict[str, Any]) -> None:
        ifs.control.call("PATCH", f"records/PurchaseOrder/{quote(key, safe='')}", json=changes)

    edit(keys[2], {"Description": "x" * 300})  # a summary over 255 characters: parked until the data is fixed
    _run(config, "sync", codes=(1,))
    edit(keys[2], {"Description": "fixed"})
    _run(config, "replay", "--failed")
    edit(keys[0], {"Description": "edited in IFS"})
    done = _issue_of(jira, keys[1])["key"]
    for status in ("In Progress", "Done"):
        jira.control.call("POST", f"issues/{done}/transition", json={"status": status})
    _run(config, "sync")
    assert _issue_of(jira, keys[0])["summary"].endswith("edited in IFS")
    written = ifs.control.call("GET", f"records/PurchaseOrder/{quote(keys[1], safe='')}")
    assert written["Cf_Jira_Status"] == "Done", written
    _moved_and_deleted(ifs, jira, config, keys[0], keys[2])


def _moved_and_deleted(ifs: SimProcess, jira: SimProcess, config: Path, moved: str, deleted: str) -> None:
    """Someone moves one issue to another project and deletes another: the connector follows the move and, once the
    deletion is confirmed on a later run, recreates the issue (404 answers are part of the recorded traffic)."""
    before = _issue_of(jira, moved)["key"]
    target = "PROC" if before.startswith("CAPEX-") else "CAPEX"
    jira.control.call("POST", f"issues/{before}/move", json={"project": target})
    jira.control.call("DELETE", f"issues/{_issue_of(jira, deleted)['key']}")
    for key in (moved, deleted):
        ifs.control.call("PATCH", f"records/PurchaseOrder/{quote(key, safe='')}", json={"Description": f"again {key}"})
    _run(config, "sync", codes=(0, 1))
    _run(config, "sync")
    assert _issue_of(jira, moved)["key"].startswith(f"{target}-")
    assert _issue_of(jira, moved)["summary"].endswith(f"again {moved}")
    assert _issue_of(jira, deleted)["summary"].endswith(f"again {deleted}")


def _webhook_upkeep(config_path: Path) -> None:
    """The daemon's dynamic-webhook upkeep (OAuth apps only), run twice: register, then list and refresh (a
    refresh window longer than Jira's 30 days makes the second pass refresh)."""
    config = load_config(config_path)
    connector = build_connector(config_path, config)  # the CLI's: OAuth tokens from the store, as runs rotated them
    try:
        for _ in range(2):
            WebhookManager(
                lambda: connector.jira,
                connector.store,
                url="https://connector.example.com/webhooks/jira",
                jql_filter=webhook_jql(config),
                refresh_before=40 * 86400,
            ).ensure()
    finally:
        connector.close()


@pytest.mark.parametrize("auth", ["basic", "oauth"])
def test_recorded_traffic_matches_the_official_document(
    auth: str, sims: tuple[SimProcess, SimProcess], tmp_path: Path
) -> None:
    openapi = require_openapi()
    ifs, jira = sims
    ifs.control.call("POST", "reset", json={"purchase_orders": 0, "work_orders": 2})
    jira.control.call("POST", "reset", json={})
    config = write_config(
        tmp_path / "ml-connector.yaml",
        ifs_url=ifs.url,
        jira_url=jira.url,
        store_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        tweak={"jira": {"auth": _auth(auth, jira.url)}, "flows": _flows(), "sync": {"deleted_issue_grace": 0}},
    )
    jira.control.clear_requests()  # the consent above is the test's, not the connector's
    _scenario(ifs, jira, config)
    if auth == "oauth":
        _webhook_upkeep(config)

    log = jira.control.requests()
    assert log["record_exchanges"] is True
    exchanges = logged_exchanges(log["requests"])
    checked = [ex for ex in exchanges if api_path(ex.url) is not None]
    problems = validate_all(openapi, exchanges)
    calls = Counter(f"{e['method']} {e['endpoint']}" for e in log["requests"])
    line = (
        f"Jira traffic ({auth}): {len(exchanges)} exchanges over {len(calls)} endpoints, {len(checked)} validated "
        f"against the official document, {len(problems)} violations"
    )
    REPORT_LINES.append(line)
    print(line, dict(calls))
    assert not problems, "\n".join(problems[:15])
    # the scenario exercised what it claims: creates, edits, user lookup, search for write-back
    assert any("/issue/bulk" in k or k == "POST /rest/api/3/issue" for k in calls), calls
    assert calls["PUT /rest/api/3/issue/{id}"] >= 1, calls
    assert any("/user/" in k for k in calls), calls
    assert any("/search/jql" in k for k in calls), calls
    assert len(checked) >= 15
    if auth == "oauth":
        assert calls["POST /rest/api/3/webhook"] == 1 and calls["PUT /rest/api/3/webhook/refresh"] >= 1, calls
        assert all(e["path"].startswith("/ex/jira/") for e in log["requests"] if "/rest/api/" in e["path"])
