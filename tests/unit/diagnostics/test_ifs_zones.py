"""``check``'s verdict on a cursor attribute's time-zone behaviour (diagnostics/ifs_zones.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.ifs_zones import TENANT_DOWN, check_cursor_zone, judge
from ml_connector.diagnostics.results import FAIL, PASS, WARN, Findings
from ml_connector.http import ApiSession, build_client
from ml_connector.ifs import IfsClient

from .helpers import example

JULY_NOON = datetime(2025, 7, 1, 12, tzinfo=UTC)


def _config(tmp_path: Path, zone: str, aware: bool) -> ConnectorConfig:
    def change(data: dict[str, Any]) -> None:
        data["ifs"]["server_time_zone"] = zone
        data["flows"][0]["cursor_time_zone_aware"] = aware

    return example(tmp_path, change)


@pytest.mark.parametrize(
    ("zone", "aware", "without", "status", "words"),
    [
        ("America/Chicago", True, datetime(2025, 7, 1, 7, tzinfo=UTC), PASS, "UTC-05:00"),
        ("UTC", True, datetime(2025, 7, 1, 7, tzinfo=UTC), WARN, "name the server's zone"),
        ("America/Chicago", False, datetime(2025, 7, 1, 7, tzinfo=UTC), FAIL, "cursor_time_zone_aware: true"),
        ("America/Chicago", True, JULY_NOON, WARN, "cursor_time_zone_aware: false"),
        ("America/Chicago", False, JULY_NOON, PASS, "wall time in ifs.server_time_zone America/Chicago"),
        ("UTC", True, JULY_NOON, PASS, "the server is at UTC"),
        ("Asia/Kolkata", True, datetime(2025, 7, 1, 17, 30, tzinfo=UTC), PASS, "UTC+05:30"),
    ],
)
def test_verdicts(tmp_path: Path, zone: str, aware: bool, without: datetime, status: str, words: str) -> None:
    config = _config(tmp_path, zone, aware)
    verdict, detail, fix = judge(config.flows[0], config.ifs, JULY_NOON, without)
    assert verdict == status, (detail, fix)
    assert words in f"{detail} {fix}"


def _ifs_answering(answer: httpx2.Response) -> IfsClient:
    settings = HttpSettings(max_attempts=2, backoff_initial=0.01, backoff_max=0.01)
    transport = httpx2.MockTransport(lambda request: answer)
    http = build_client("http://ifs.test/main/ifsapplications/projection/v1/", settings, transport=transport)
    return IfsClient(ApiSession(http, system="ifs", settings=settings))


@pytest.mark.parametrize(
    "answer",
    [
        httpx2.Response(503, text="maintenance"),  # persistent: every attempt
        httpx2.Response(200, text="<html>sign in</html>", headers={"Content-Type": "text/html"}),
        httpx2.Response(200, json=[1, 2]),
        httpx2.Response(200, json={"@odata.context": "x"}),  # no collection at all
        httpx2.Response(200, json={"value": "oops"}),
        httpx2.Response(200, json={"value": [1]}),
    ],
    ids=["persistent-503", "html", "list", "no-value", "value-not-list", "row-not-object"],
)
def test_a_failed_or_malformed_answer_is_a_failed_check_not_a_crash_or_a_skip(
    tmp_path: Path, answer: httpx2.Response
) -> None:
    config = _config(tmp_path, "America/Chicago", True)
    findings = Findings(())
    check_cursor_zone(_ifs_answering(answer), config.flows[0], config.ifs, findings)
    [result] = findings.results
    assert result.status == FAIL, result
    assert result.fix == TENANT_DOWN
