"""The realistic server-time profile: the numbers issue 14 names, scaled by the work, and nothing without a profile."""

from __future__ import annotations

import pytest

from ml_connector.sim.servertime import PROFILES, server_seconds


def test_realistic_numbers_scale_with_the_work() -> None:
    assert 1.0 <= server_seconds("realistic", "jira.bulk_create", 50) <= 2.0
    assert server_seconds("realistic", "jira.bulk_create", 10) < server_seconds("realistic", "jira.bulk_create", 50)
    assert server_seconds("realistic", "jira.edit") == pytest.approx(0.3)
    assert server_seconds("realistic", "jira.search") == pytest.approx(0.4)
    assert server_seconds("realistic", "ifs.read", 1000) == pytest.approx(0.8)
    assert server_seconds("realistic", "ifs.read", 4999) > 3 * server_seconds("realistic", "ifs.read", 1000)


def test_no_profile_is_no_server_time() -> None:
    assert all(server_seconds(None, op, 50) == 0 for op in PROFILES["realistic"])
    assert server_seconds("realistic", "ifs.read", -5) == server_seconds("realistic", "ifs.read", 0) > 0
