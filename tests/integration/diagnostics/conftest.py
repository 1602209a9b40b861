from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml_connector.serve import ServerHandle

from ..runner.simenv import simulators


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[ServerHandle, ServerHandle]]:
    with simulators(purchase_orders=5, work_orders=5, seed=7) as pair:
        yield pair


@pytest.fixture
def env(sims: tuple[ServerHandle, ServerHandle], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFS_URL", sims[0].url)
    monkeypatch.setenv("JIRA_URL", sims[1].url)
    monkeypatch.setenv("ML_CONNECTOR_LOG_LEVEL", "DEBUG")  # the most talkative logs must still hide secrets
