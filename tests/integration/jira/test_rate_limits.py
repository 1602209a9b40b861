"""429 handling: Retry-After is honoured; a per-issue write limit slows writes to that issue only."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import ConnectorError
from ml_connector.http import Pacer
from ml_connector.http.session import may_have_acted
from ml_connector.jira import DraftIssue, JiraClient

from .helpers import RecordingTransport, Sim, basic_connection


class Retries:
    def __init__(self) -> None:
        self.delays: list[tuple[str, float, str | None]] = []

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        return None

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        self.delays.append((type(error).__name__, delay, getattr(error, "reason", None)))


def _issue(client: JiraClient, summary: str) -> str:
    draft = DraftIssue(fields={"project": {"key": "PROC"}, "issuetype": {"name": "Task"}, "summary": summary})
    return client.create_issue(draft).id


def test_retry_after_is_honoured(sim: Sim, recorder: RecordingTransport) -> None:
    observer = Retries()
    client = JiraClient.from_connection(
        basic_connection(sim, HttpSettings(backoff_initial=0.01, backoff_max=0.02)),
        observer=observer,
        transport=recorder,
    )
    sim.faults(fail_next=[{"status": 429, "count": 1, "retry_after": 1, "path_contains": "/myself"}])
    assert client.myself()["accountId"]
    assert len(observer.delays) == 1 and observer.delays[0][0] == "RateLimited" and observer.delays[0][1] >= 1.0
    calls = [r for r in sim.requests()["requests"] if r["path"].endswith("/myself")]
    assert [c["status"] for c in calls] == [429, 200]
    gap = datetime.fromisoformat(calls[1]["time"]) - datetime.fromisoformat(calls[0]["time"])
    assert gap.total_seconds() >= 0.95  # the server saw the resend no earlier than it asked
    client.close()


def test_per_issue_write_limit_slows_only_that_issue(sim: Sim, recorder: RecordingTransport) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    pacer = Pacer(requests_per_minute=None, sleep=sleep)
    observer = Retries()
    client = JiraClient.from_connection(
        basic_connection(sim, HttpSettings(backoff_initial=0.01, backoff_max=0.02)),
        pacer=pacer,
        observer=observer,
        transport=recorder,
    )
    hot, cold = _issue(client, "hot"), _issue(client, "cold")
    sim.faults(per_issue_writes_per_second=1, retry_after_seconds=1)
    done = threading.Event()
    cold_waits: list[float] = []

    def write_hot() -> None:
        for n in range(3):
            client.edit_issue(hot, {"summary": f"hot {n}"})
        done.set()

    worker = threading.Thread(target=write_hot)
    worker.start()
    deadline = time.monotonic() + 10
    while not observer.delays and time.monotonic() < deadline:
        time.sleep(0.01)
    assert observer.delays and observer.delays[0][2] == "jira-per-issue-on-write"
    # While the hot issue is held back, a write to another issue goes straight out.
    cold_waits.append(pacer.wait("127.0.0.1", ("burst:issue-write", f"issue:{cold}")))
    client.edit_issue(cold, {"summary": "cold 1"})
    hot_wait = pacer.wait("127.0.0.1", ("burst:issue-write", f"issue:{hot}"))  # another writer of the hot issue
    worker.join(15)
    assert done.is_set()
    assert cold_waits == [0.0]
    assert hot_wait > 0
    assert client.get_issue(hot, fields=["summary"])["fields"]["summary"] == "hot 2"
    statuses = [r["status"] for r in sim.requests()["requests"] if r["method"] == "PUT"]
    assert 429 in statuses
    client.close()


def _stopped_within(call: Any, stop: threading.Event, started: threading.Event) -> tuple[float, BaseException | None]:
    """Run ``call`` in a thread, set ``stop`` once ``started`` is set; (seconds from stop to the call's end, error)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    assert started.wait(10), "the call never reached its wait"
    stop.set()
    stopped = time.monotonic()
    worker.join(10)
    assert not worker.is_alive()
    return time.monotonic() - stopped, outcome[0]


def test_a_stop_ends_a_retry_after_wait_at_once(sim: Sim, recorder: RecordingTransport) -> None:
    started = threading.Event()

    class Observer(Retries):
        def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
            super().on_retry(system, error, delay)
            started.set()

    observer = Observer()
    client = JiraClient.from_connection(basic_connection(sim, HttpSettings()), observer=observer, transport=recorder)
    sim.faults(fail_next=[{"status": 429, "count": 1, "retry_after": 30, "path_contains": "/myself"}])
    elapsed, error = _stopped_within(client.myself, client.session.stop, started)
    assert elapsed < 2.0 and observer.delays[0][1] >= 30
    assert isinstance(error, ConnectorError) and type(error).__name__ == "RateLimited"
    assert [r["status"] for r in sim.requests()["requests"] if r["path"].endswith("/myself")] == [429]  # no resend
    client.close()


def test_a_stop_ends_a_pacing_wait_and_the_request_is_not_sent(sim: Sim, recorder: RecordingTransport) -> None:
    waiting = threading.Event()

    def sleep(seconds: float) -> None:  # never used: with a stop event the pacer waits on it
        raise AssertionError("pacer slept without the stop event")

    class Clock:
        def __call__(self) -> float:
            waiting.set()  # read when the pacer computes how long the held-back key must wait
            return time.monotonic()

    pacer = Pacer(requests_per_minute=None, sleep=sleep, clock=Clock())
    client = JiraClient.from_connection(
        basic_connection(sim, HttpSettings()), pacer=pacer, observer=Retries(), transport=recorder
    )
    issue = _issue(client, "held")
    puts = sum(r["method"] == "PUT" for r in sim.requests()["requests"])
    pacer.defer(f"issue:{issue}", 30)  # as after a per-issue 429 with Retry-After: 30
    waiting.clear()
    elapsed, error = _stopped_within(lambda: client.edit_issue(issue, {"summary": "x"}), client.session.stop, waiting)
    assert elapsed < 2.0
    assert isinstance(error, ConnectorError) and not may_have_acted(error), error  # held back, never sent
    assert sum(r["method"] == "PUT" for r in sim.requests()["requests"]) == puts
    client.close()
