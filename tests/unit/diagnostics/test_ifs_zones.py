"""``check``'s verdict on a cursor attribute's time-zone behaviour (diagnostics/ifs_zones.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.ifs_zones import judge
from ml_connector.diagnostics.results import FAIL, PASS, WARN

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
