"""Honest outcomes of `ml-connector sync`: a bug in one flow stops that flow only, prints one line naming a redacted
report, and exits 7; nothing foreseeable ever shows a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.harness import World, example_config, world

from ml_connector.cli import app as cli_app
from ml_connector.engine import OutboundSync, RunReport
from ml_connector.store import Store


def _config(w: World, tmp_path: Path, edit: Callable[[dict[str, Any]], object] | None = None) -> Path:
    """The example config against ``w``, changed by ``edit`` (the mistake a test makes)."""
    data = example_config()
    data["ifs"].update(url=w.ifs.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["jira"].update(url=w.jira.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state' / 'state.sqlite'}"}
    if edit is not None:
        edit(data)
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["ml-connector", *args])
    with pytest.raises(SystemExit) as done:
        cli_app.main()
    code = done.value.code
    return int(code) if isinstance(code, int) else 0


def test_a_bug_in_one_flow_stops_that_flow_only_and_names_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_run = OutboundSync.run

    def buggy(self: OutboundSync, **kwargs: Any) -> RunReport:
        if self.flow.name == "purchase_orders":
            raise KeyError("Authorization: Basic c2VjcmV0OnNpbS1hcGktdG9rZW4= and sim-api-token")
        return real_run(self, **kwargs)

    monkeypatch.setattr(OutboundSync, "run", buggy)
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "ERROR")
    with world(purchase_orders=4, work_orders=3) as w:
        path = _config(w, tmp_path)
        code = _main(monkeypatch, "sync", "-c", str(path))
        out, err = capsys.readouterr()
        assert code == cli_app.ExitCode.INTERNAL == 7
        assert "Traceback" not in out + err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "unexpected error purchase_orders (outbound): (KeyError)" in lines[0]
        report = Path(lines[0].rsplit("the full report is in ", 1)[1].strip())
        assert report.parent == tmp_path / "state" and report.stat().st_mode & 0o077 == 0
        text = report.read_text()
        assert "Traceback" in text and "KeyError" in text and "buggy" in text
        assert "sim-api-token" not in text and "c2VjcmV0" not in text
        # The other flow ran: its issues exist, its run row says so.
        assert len(w.jira_issues("MAINT")) == 3
        store = Store.open(f"sqlite:///{tmp_path / 'state' / 'state.sqlite'}")
        try:
            assert store.runs.last("work_orders", kind="outbound").status == "succeeded"  # type: ignore[union-attr]
        finally:
            store.close()


def test_an_unexpected_error_outside_any_flow_is_one_line_and_exit_7(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_value: object) -> None:
        raise RuntimeError("a bug before any flow started")

    monkeypatch.setattr("ml_connector.cli.commands.open_connector", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code = _main(monkeypatch, "sync", "-c", str(tmp_path / "any.yaml"))
    out, err = capsys.readouterr()
    assert code == 7 and "Traceback" not in out + err
    assert err.count("\n") == 1 and "unexpected error (RuntimeError)" in err
    report = next((tmp_path / "ml-connector").glob("ml-connector-crash-*.txt"))
    assert "a bug before any flow started" in report.read_text()


def test_a_systemic_error_stops_its_flow_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config error found at run time (a custom field Jira does not have) stops the work order flow; the purchase
    order flow and its write-back still run; the exit code is the config error's."""
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "ERROR")
    with world(purchase_orders=4, work_orders=3) as w:
        def mistake(data: dict[str, Any]) -> None:
            data["flows"][1]["mapping"]["custom_fields"]["No Such Field"] = "{{ WoNo }}"

        path = _config(w, tmp_path, mistake)
        code = _main(monkeypatch, "sync", "-c", str(path))
        out, err = capsys.readouterr()
        assert code == cli_app.ExitCode.CONFIG
        assert "Traceback" not in out + err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error work_orders (outbound): (ConfigError)")
        assert "No Such Field" in lines[0]
        assert len(w.jira_issues("MAINT")) == 0
        assert len([i for i in w.jira_issues() if i["project"] != "MAINT"]) == 4  # the other flow synced
        assert "purchase_orders" in out and "succeeded" in out and "failed" in out


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refused_credentials_name_the_config_key_as_check_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "ERROR")
    with world(purchase_orders=2, work_orders=1) as w:
        def mistake(data: dict[str, Any]) -> None:
            data["jira"]["auth"]["api_token"] = "wrong-token"

        path = _config(w, tmp_path, mistake)
        code = _main(monkeypatch, "sync", "-c", str(path))
        err = capsys.readouterr().err
        assert code == cli_app.ExitCode.AUTH
        assert "fix: check jira.auth.email and jira.auth.api_token" in err, err


def test_an_unreachable_host_names_its_url_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "ERROR")
    port = _unused_port()
    with world(purchase_orders=2, work_orders=1) as w:
        def mistake(data: dict[str, Any]) -> None:
            data["ifs"]["url"] = f"http://127.0.0.1:{port}"

        path = _config(w, tmp_path, mistake)
        code = _main(monkeypatch, "sync", "-c", str(path))
        err = capsys.readouterr().err
        assert code == cli_app.ExitCode.UNAVAILABLE
        assert f"fix: check ifs.url (http://127.0.0.1:{port}" in err, err


def test_a_config_error_in_one_flow_stops_that_flow_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "ERROR")
    with world(purchase_orders=2, work_orders=2) as w:
        def mistake(data: dict[str, Any]) -> None:
            po = next(f for f in data["flows"] if f["name"] == "purchase_orders")
            fields = po["mapping"]["custom_fields"]
            fields["No Such Field"] = fields.pop("GL Account")

        path = _config(w, tmp_path, mistake)
        code = _main(monkeypatch, "sync", "-c", str(path))
        err = capsys.readouterr().err
        assert code == cli_app.ExitCode.CONFIG
        assert "purchase_orders" in err and "No Such Field" in err, err
        assert w.jira_issues("MAINT") and not w.jira_issues("CAPEX") + w.jira_issues("PROC")  # work orders ran


def test_an_unknown_project_in_one_flow_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "ERROR")
    with world(purchase_orders=2, work_orders=2) as w:
        def mistake(data: dict[str, Any]) -> None:
            wo = next(f for f in data["flows"] if f["name"] == "work_orders")
            wo["mapping"]["project"] = {"source": "WorkTypeId", "map": {}, "default": "NOPE"}

        path = _config(w, tmp_path, mistake)
        code = _main(monkeypatch, "sync", "-c", str(path))
        out, err = capsys.readouterr()
        assert code != cli_app.ExitCode.OK and "NOPE" in out + err, out + err
        assert w.jira_issues("PROC") or w.jira_issues("CAPEX")  # purchase orders ran
