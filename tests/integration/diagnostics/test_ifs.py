"""The IFS checks against the IFS simulator: a refused token and a field the projection does not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector.cli.app import ExitCode

from ..runner.simenv import example_config
from .helpers import check, failures


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
    assert "flows[0] (purchase_orders).select" in failed["fix"]
