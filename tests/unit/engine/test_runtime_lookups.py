"""The runtime's independent lookups go out at once: the user searches of a page, the mapping context's reads."""

from __future__ import annotations

import contextvars
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from ml_connector.engine.runtime import USER_CACHE_AGE, Connector, all_at_once
from ml_connector.ifs.client import IfsClient
from ml_connector.jira.client import JiraClient
from ml_connector.jira.users import UserResolution
from ml_connector.store import Store

from ..diagnostics.helpers import example


class Searches:
    """A user resolver that needs ``together`` searches in flight at once to answer any (a barrier)."""

    def __init__(self, together: int) -> None:
        self.barrier = threading.Barrier(together, timeout=5)
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, email: str) -> UserResolution:
        with self.lock:
            self.asked.append(email)
        self.barrier.wait()  # sequential searches never get past this: BrokenBarrierError
        if email.startswith("nobody"):
            return UserResolution(email, "not_found")
        return UserResolution(email, "found", f"acc-{email.split('@')[0]}")


def _connector(tmp_path: Path, store: Store, searches: Searches) -> Connector:
    jira = SimpleNamespace(users=searches, session=SimpleNamespace(stop=None))
    return Connector(example(tmp_path), store=store, jira_factory=lambda: cast(JiraClient, jira))


def test_unknown_emails_are_searched_at_once_and_remembered(tmp_path: Path, store: Store) -> None:
    store.users.cache("known@example.com", "acc-known")
    searches = Searches(together=3)
    c = _connector(tmp_path, store, searches)
    emails = {"known@example.com", "a@example.com", "b@example.com", "nobody@example.com"}
    assert c.account_ids(emails) == {
        "known@example.com": "acc-known",
        "a@example.com": "acc-a",
        "b@example.com": "acc-b",
        "nobody@example.com": None,
    }
    assert sorted(searches.asked) == ["a@example.com", "b@example.com", "nobody@example.com"]
    searches.asked.clear()
    assert c.account_ids(emails)["nobody@example.com"] is None  # hits and misses come from the store now
    assert searches.asked == []


def test_a_dry_runs_searches_are_not_remembered(tmp_path: Path, store: Store) -> None:
    searches = Searches(together=2)
    c = _connector(tmp_path, store, searches)
    assert c.account_ids({"a@example.com", "b@example.com"}, remember=False) == {
        "a@example.com": "acc-a",
        "b@example.com": "acc-b",
    }
    assert store.users.cached(max_age=USER_CACHE_AGE) == {}


def test_calls_at_once_run_in_the_callers_context_and_the_first_error_comes_after_all_ended() -> None:
    budget: contextvars.ContextVar[str] = contextvars.ContextVar("budget", default="none")
    budget.set("this run")
    ended: list[str] = []

    def slow() -> str:
        time.sleep(0.2)
        ended.append("slow")
        return budget.get()

    def failing() -> str:
        raise RuntimeError("lookup refused")

    assert all_at_once({"a": lambda: budget.get(), "b": slow}) == {"a": "this run", "b": "this run"}
    ended.clear()
    with pytest.raises(RuntimeError, match="lookup refused"):
        all_at_once({"slow": slow, "failing": failing})
    assert ended == ["slow"]  # no thread is left working after the error is raised


class HeldSearches:
    """A user resolver whose searches wait until ``release`` is set, so calls of two pages overlap for sure."""

    def __init__(self, fail: bool = False) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.asked: list[str] = []
        self.fail = fail

    def resolve(self, email: str) -> UserResolution:
        self.asked.append(email)
        self.started.set()
        assert self.release.wait(5)
        if self.fail:
            raise RuntimeError("search failed")
        return UserResolution(email, "found", f"acc-{email.split('@')[0]}")


def _overlapping(c: Connector, searches: HeldSearches) -> tuple[dict[str, object], dict[str, object]]:
    """The first page's call, and a second page's call made while the first one's search is in flight."""
    first: dict[str, object] = {}
    second: dict[str, object] = {}

    def call(emails: set[str], into: dict[str, object]) -> None:
        try:
            into.update(c.account_ids(emails))
        except Exception as exc:  # the outcome is what the test reads
            into["error"] = exc

    one = threading.Thread(target=call, args=({"a@example.com"}, first))
    one.start()
    assert searches.started.wait(5)
    two = threading.Thread(target=call, args=({"a@example.com", "b@example.com"}, second))
    two.start()
    time.sleep(0.2)  # the second call has claimed b and found a in flight
    searches.release.set()
    one.join(5)
    two.join(5)
    return first, second


def test_pages_that_need_one_new_assignee_at_once_search_for_it_once(tmp_path: Path, store: Store) -> None:
    searches = HeldSearches()
    c = _connector(tmp_path, store, cast(Searches, searches))
    first, second = _overlapping(c, searches)
    assert first == {"a@example.com": "acc-a"}
    assert second == {"a@example.com": "acc-a", "b@example.com": "acc-b"}
    assert sorted(searches.asked) == ["a@example.com", "b@example.com"]  # a once, not once per page


def test_a_failed_search_fails_the_pages_waiting_for_it_and_is_not_remembered(tmp_path: Path, store: Store) -> None:
    searches = HeldSearches(fail=True)
    c = _connector(tmp_path, store, cast(Searches, searches))
    first, second = _overlapping(c, searches)
    assert isinstance(first["error"], RuntimeError) and isinstance(second["error"], RuntimeError)
    searches.fail = False
    searches.asked.clear()
    assert c.account_ids({"a@example.com"}) == {"a@example.com": "acc-a"}  # searched again: nothing left in flight
    assert searches.asked == ["a@example.com"]


def test_the_ifs_client_is_handed_out_while_the_jira_client_is_still_being_built(tmp_path: Path, store: Store) -> None:
    """A run builds the Jira client (its TLS context: tens of ms) beside the lookups, which need only IFS."""
    building, release = threading.Event(), threading.Event()
    ifs = SimpleNamespace(session=SimpleNamespace(stop=None))

    def slow_jira() -> JiraClient:
        building.set()
        release.wait(5)
        return cast(JiraClient, SimpleNamespace(session=SimpleNamespace(stop=None)))

    c = Connector(example(tmp_path), store=store, jira_factory=slow_jira, ifs_factory=lambda: cast(IfsClient, ifs))
    builder = threading.Thread(target=lambda: c.jira)
    builder.start()
    try:
        assert building.wait(5)
        got: list[IfsClient] = []
        reader = threading.Thread(target=lambda: got.append(c.ifs))
        reader.start()
        reader.join(2)
        assert got == [ifs]  # not held up until the Jira client exists
    finally:
        release.set()
        builder.join(5)
