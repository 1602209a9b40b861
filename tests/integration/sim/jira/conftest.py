from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml_connector.sim.jira import JiraSimOptions

from .helpers import Receiver, RunningSim, running_sim, webhook_receiver


@pytest.fixture(scope="module")
def jira() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh(jira: RunningSim) -> None:
    jira.sim.reset(JiraSimOptions())


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r
