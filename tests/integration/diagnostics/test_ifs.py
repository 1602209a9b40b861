"""The IFS checks against the IFS simulator: a refused token, a missing field, the server's time zone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ml_connector.cli.app import ExitCode
from ml_connector.serve import ServerHandle

from ..runner.simenv import example_config
from .helpers import check, failures, json_rows


def test_wrong_client_secret(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFS_CLIENT_SECRET", "wrong-Secret-4711")
    code, output = check(tmp_path, example_config())
    assert code != ExitCode.OK
    assert "FAIL │ ifs │ IFS token" in output
    assert "ifs.client_secret" in output  # the fix names the setting, never its value
    assert "Jira authentication" in output  # Jira is still checked


def test_missing_field_in_select(env: None, tmp_path: Path) -> None:
    data = example_config()
    data["flows"][0]["select"] = [*data["flows"][0]["select"], "VendorName", "description"]
    [failed] = failures(tmp_path, data)
    assert failed["name"] == "PurchaseOrderHandling.svc/PurchaseOrderSet fields"
    assert failed["detail"] == "not in $metadata: VendorName, description (did you mean Description?)"
    assert "flows[0].select / key / cursor_field" in failed["fix"]


@pytest.fixture
def chicago(sims: tuple[ServerHandle, ServerHandle]) -> Iterator[None]:
    """The IFS simulator's server in America/Chicago for one test."""
    with httpx2.Client(base_url=sims[0].url) as http:
        http.put("/_sim/time-zone", json={"time_zone": "America/Chicago"}).raise_for_status()
        try:
            yield
        finally:
            http.put("/_sim/time-zone", json={"time_zone": "UTC"}).raise_for_status()


def _zone_rows(tmp_path: Path, server_time_zone: str, aware: bool = True) -> dict[str, dict[str, Any]]:
    data = example_config()
    data["ifs"]["server_time_zone"] = server_time_zone
    data["flows"][0]["cursor_time_zone_aware"] = aware
    _, rows = json_rows(tmp_path, data)
    return {r["name"]: r for r in rows if r["name"].endswith("cursor time zone")}


def test_check_reports_the_servers_zone(env: None, chicago: None, tmp_path: Path) -> None:
    rows = _zone_rows(tmp_path, "America/Chicago")
    assert rows["purchase_orders: cursor time zone"]["status"] == "pass"
    assert (
        "Cf_Changed_At is time-zone aware; the server shows UTC-0"
        in rows["purchase_orders: cursor time zone"]["detail"]
    )
    wrong = _zone_rows(tmp_path, "UTC")["work_orders: cursor time zone"]
    assert wrong["status"] == "warn" and "ifs.server_time_zone is UTC" in wrong["fix"]
    naive = _zone_rows(tmp_path, "America/Chicago", aware=False)["purchase_orders: cursor time zone"]
    assert naive["status"] == "fail" and "cursor_time_zone_aware: true" in naive["fix"]
