"""`check --sample N` against the simulators: the three mistakes a new operator makes each give a failing line with
the exact fix, unmapped values are counted over the sample, and the check writes nothing on either side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import World, world

from ml_connector.cli.app import ExitCode

from ..runner.simenv import example_config
from .helpers import check, json_rows

SAMPLE = 50


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    with world(purchase_orders=120, work_orders=6) as running:
        yield running


@pytest.fixture
def env(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFS_URL", w.ifs.url)
    monkeypatch.setenv("JIRA_URL", w.jira.url)
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "DEBUG")  # the most talkative logs must still hide secrets
    w.jira_sim.clear_requests()
    w.ifs_sim.clear_requests()


def _sample_projects(w: World) -> Counter[str]:
    """ProjectId of the first SAMPLE purchase orders a first sync reads (the flow's filter, key order)."""
    rows = sorted((r for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled"), key=lambda r: r["OrderNo"])
    return Counter(r["ProjectId"] or "" for r in rows[:SAMPLE])


def _line(row: dict[str, Any]) -> str:
    return f"{row['detail']}: {row['fix']}"


def _reads_only(w: World) -> None:
    jira = [k for k in w.jira_sim.counts() if not k.startswith("GET ") and "/search" not in k]
    ifs = [k for k in w.ifs_sim.counts() if not k.startswith("GET ") and "openid-connect/token" not in k]
    assert (jira, ifs) == ([], [])


def test_project_missing_from_the_map(env: None, w: World, tmp_path: Path) -> None:
    data = example_config()
    del data["flows"][0]["mapping"]["project"]["default"]
    code, plain = check(tmp_path, data)  # without --sample: the config fits the metadata, the data is not read
    assert code == ExitCode.OK, plain

    code, rows = json_rows(tmp_path, data, "--sample", str(SAMPLE))

    assert code == ExitCode.ERROR
    mapping = [r for r in rows if r["system"] == "mapping" and r["status"] == "fail"]
    unmapped = {p: n for p, n in _sample_projects(w).items() if p not in ("PRJ-1000", "PRJ-1001")}
    assert len(mapping) == len(unmapped) and unmapped
    where = "flows[0].mapping.project"
    for project, n in unmapped.items():
        if not project:
            continue
        [row] = [r for r in mapping if r["name"] == f"purchase_orders: project {project}"]
        plural = "s" if n != 1 else ""
        assert _line(row) == (
            f"{project} ({n} record{plural}) has no Jira project: "
            f"add {project!r} under {where}.map (or set {where}.default)"
        )
    counts = [int(r["detail"].split("(")[1].split(" ")[0]) for r in mapping]
    assert counts == sorted(counts, reverse=True)  # the biggest group first
    assert [r["status"] for r in rows if r["name"] == f"work_orders: sample of {SAMPLE}"] == ["pass"]
    _reads_only(w)


def test_misspelt_custom_field_name(env: None, w: World, tmp_path: Path) -> None:
    data = example_config()
    fields = data["flows"][0]["mapping"]["custom_fields"]
    fields["Cost Centre:text"] = fields.pop("Cost Center:text")
    code, rows = json_rows(tmp_path, data, "--sample", "10")
    assert code == ExitCode.ERROR
    [failed] = [r for r in rows if r["status"] == "fail"]
    assert failed["name"] == "purchase_orders: field 'Cost Centre:text'"
    assert failed["fix"] == "correct the field name in flows[0].mapping.custom_fields: did you mean 'Cost Center'?"
    # The sample still maps (without that field): nothing else is wrong with the data.
    assert [r for r in rows if r["system"] == "mapping" and r["status"] == "fail"] == []
    # The simulated tenant has a buyer without a Jira account: a warning naming where to map the person.
    users = [r for r in rows if r["system"] == "mapping" and r["status"] == "warn"]
    assert users and all(r["detail"].endswith("has no Jira user: left unassigned") for r in users)
    # The fix a real sync's "Warnings" lines give for the same reason (reasons.USER_NOT_FOUND), naming the email.
    email = users[0]["name"].removeprefix("purchase_orders: assignee ")
    assert users[0]["fix"] == (
        f"give {email} a Jira account, map them to other emails under flows[0].mapping.assignee.emails, "
        "or set flows[0].mapping.assignee.fallback_email"
    )
    _reads_only(w)


def test_misspelt_priority_and_option_names(env: None, w: World, tmp_path: Path) -> None:
    data = example_config()
    mapping = data["flows"][0]["mapping"]
    mapping["priority"]["map"] = {"T1": "Hihg", "T2": "Medium", "T3": "Low"}
    mapping["custom_fields"]["Cost Center:select"]["map"]["CC200"] = "CC 200"
    code, rows = json_rows(tmp_path, data, "--sample", str(SAMPLE))
    assert code == ExitCode.ERROR
    [priority] = [r for r in rows if r["name"] == "purchase_orders: priority Hihg"]
    assert priority["status"] == "fail"
    assert priority["detail"].startswith("Jira priority 'Hihg' (")
    assert priority["detail"].endswith("records) does not exist; did you mean 'High'?")
    assert priority["fix"] == (
        "correct the Jira priority 'Hihg' in flows[0].mapping.priority.map (`ml-connector check` lists the priorities "
        "Jira has)"
    )
    [option] = [r for r in rows if r["name"] == "purchase_orders: Cost Center:select CC 200"]
    assert option["detail"].startswith("'CC 200' (") and option["detail"].endswith(
        "records) is not an option of 'Cost Center:select'; did you mean 'CC-200'?"
    )
    assert option["fix"] == (
        "correct 'CC 200' in flows[0].mapping.custom_fields.Cost Center:select.map (or its default): Jira field "
        "'Cost Center:select' takes one of its options (`ml-connector check` lists them)"
    )
    _reads_only(w)


def test_wrong_ifs_secret_names_the_key_and_skips_the_sample(
    env: None, w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IFS_CLIENT_SECRET", "wrong-Secret-4711")
    code, rows = json_rows(tmp_path, example_config(), "--sample", "5")
    assert code == ExitCode.ERROR
    [token] = [r for r in rows if r["name"] == "IFS token"]
    assert token["status"] == "fail" and "ifs.client_secret (IFS_CLIENT_SECRET)" in token["fix"]
    [sample] = [r for r in rows if r["system"] == "mapping"]
    assert sample["status"] == "skip" and "IFS and Jira signed in" in sample["detail"]


def test_a_flow_whose_records_cannot_be_read_fails_alone(env: None, w: World, tmp_path: Path) -> None:
    """Work orders answer 500 every time and purchase-order lines come back as an HTML page: each sample says why,
    no traceback, and the check goes on."""
    data = example_config()
    data["ifs"]["http"] = {"backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 2}
    w.ifs_sim.faults(
        fail_next=[
            {"status": 500, "count": 1000, "path_contains": "ActiveSeparateSet"},
            {"kind": "html", "count": 1000, "path_contains": "PurchaseOrderLinePartSet"},
        ]
    )
    try:
        code, rows = json_rows(tmp_path, data, "--sample", "20")
    finally:
        w.ifs_sim.faults(fail_next=[])
    assert code == ExitCode.ERROR
    samples = {r["name"]: r for r in rows if r["system"] == "mapping"}
    assert samples["work_orders: sample of 20"]["status"] == "fail"
    assert "500" in samples["work_orders: sample of 20"]["detail"]
    assert samples["purchase_orders: sample of 20"]["status"] == "fail"
    assert "got text/html" in samples["purchase_orders: sample of 20"]["detail"]
    assert samples["purchase_orders: sample of 20"]["fix"] == "check flows[0] and the IFS/Jira rows above"
    assert rows[-1]["system"] == "web"  # the checks after the sample still ran
    _reads_only(w)
