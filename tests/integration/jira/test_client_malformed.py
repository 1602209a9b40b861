"""JiraClient against the Jira simulator's wire faults over loopback HTTP.

Bulk create, edit, search and the OAuth token endpoint meet HTML pages, cut bodies, dropped connections and hangs:
each becomes a classified error with a clear message. Reads and edits (idempotent) are retried and recover when the
fault passes; a bulk create whose answer was lost is reported as an uncertain failure and never resent, so Jira holds
exactly one issue per draft. These clients send without the contract recorder: the faults break the contract on
purpose.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import AuthError, MalformedResponse, Unavailable
from ml_connector.http import RateLimitBudget, rate_limit_scope
from ml_connector.jira import DraftIssue, JiraClient, MemoryTokenStore

from .helpers import FAST, Sim, basic_connection, consent, oauth_connection

BULK = "/rest/api/3/issue/bulk"
PERSISTENT = 1000


@pytest.fixture
def client(sim: Sim) -> Iterator[JiraClient]:
    with JiraClient.from_connection(basic_connection(sim)) as c:
        yield c


def draft(ref: str) -> DraftIssue:
    return DraftIssue(
        fields={"project": {"key": "PROC"}, "issuetype": {"name": "Task"}, "summary": f"{ref} pump"},
        labels=("ifs", f"ifs-{ref}"),
        ref=ref,
    )


def _rule(kind: str, path: str, *, method: str | None = None, count: int = 1, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "path_contains": path, "method": method, "count": count, **extra}


def _with_label(sim: Sim, label: str) -> list[dict[str, Any]]:
    return [i for i in sim.issues("PROC") if label in i["labels"]]


def _calls(sim: Sim, method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in sim.requests()["requests"] if r["method"] == method and r["path"] == path]


# ------------------------------------------------------------------------------------------------ bulk create


@pytest.mark.parametrize("kind", ["drop_after", "truncated"])
def test_bulk_create_that_acted_is_uncertain_and_not_resent(kind: str, client: JiraClient, sim: Sim) -> None:
    sim.faults(fail_next=[_rule(kind, "/issue/bulk", method="POST")])
    outcomes = client.bulk_create([draft("PO-A1"), draft("PO-A2")])
    for outcome in outcomes:
        assert outcome.issue is None and outcome.failure is not None
        assert outcome.failure.uncertain and outcome.failure.transient
        assert "the server may have acted" in outcome.failure.message
    assert len(_calls(sim, "POST", BULK)) == 1
    assert len(_with_label(sim, "ifs-PO-A1")) == 1 and len(_with_label(sim, "ifs-PO-A2")) == 1  # Jira acted once


def test_bulk_create_answered_with_html_is_uncertain_with_a_clear_message(client: JiraClient, sim: Sim) -> None:
    sim.faults(fail_next=[_rule("html", "/issue/bulk", method="POST")])
    [outcome] = client.bulk_create([draft("PO-H1")])
    assert outcome.failure is not None and outcome.failure.uncertain
    assert outcome.failure.message == f"expected JSON from POST {BULK}, got text/html (proxy or login page?)"
    assert len(_calls(sim, "POST", BULK)) == 1
    assert _with_label(sim, "ifs-PO-H1") == []  # the proxy answered; the caller's reconcile finds nothing, creates


def test_bulk_create_dropped_before_acting_is_uncertain_too(client: JiraClient, sim: Sim) -> None:
    # From the client's side a drop before and after acting look the same: it must not guess.
    sim.faults(fail_next=[_rule("drop_before", "/issue/bulk")])
    [outcome] = client.bulk_create([draft("PO-D1")])
    assert outcome.failure is not None and outcome.failure.uncertain
    assert _with_label(sim, "ifs-PO-D1") == [] and len(_calls(sim, "POST", BULK)) == 1


def test_bulk_create_past_the_read_timeout_is_uncertain(sim: Sim) -> None:
    settings = HttpSettings(read_timeout=0.4, max_attempts=3, backoff_initial=0.01, backoff_max=0.02)
    sim.faults(fail_next=[_rule("hang", "/issue/bulk", hang_seconds=30)])
    started = time.monotonic()
    with JiraClient.from_connection(basic_connection(sim, settings)) as slow:
        [outcome] = slow.bulk_create([draft("PO-T1")])
    assert time.monotonic() - started < 5
    assert outcome.failure is not None and outcome.failure.uncertain
    assert f"no answer to POST {BULK} in time (ReadTimeout)" in outcome.failure.message
    deadline = time.monotonic() + 10  # the simulator notices the client left, abandons the request, logs it
    while not _calls(sim, "POST", BULK) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [c["status"] for c in _calls(sim, "POST", BULK)] == [0]  # sent once, never resent


def test_bulk_create_through_a_429_storm_creates_each_issue_once(client: JiraClient, sim: Sim) -> None:
    sim.faults(fail_next=[{"status": 429, "count": 6, "retry_after": 0.2, "path_contains": "/issue/bulk"}])
    outcomes = client.bulk_create([draft(f"PO-R{n}") for n in range(3)])  # FAST allows only 4 attempts
    assert all(o.ok for o in outcomes)
    assert [len(_with_label(sim, f"ifs-PO-R{n}")) for n in range(3)] == [1, 1, 1]
    assert len(_calls(sim, "POST", BULK)) == 7


def test_a_storm_longer_than_the_run_budget_fails_the_drafts_as_certain_not_sent(client: JiraClient, sim: Sim) -> None:
    sim.faults(fail_next=[{"status": 429, "count": PERSISTENT, "retry_after": 0.5, "path_contains": "/issue/bulk"}])
    budget = RateLimitBudget(2.0)
    started = time.monotonic()
    with rate_limit_scope(budget):
        [outcome] = client.bulk_create([draft("PO-B1")], element_retries=0)
    assert 1.5 <= time.monotonic() - started < 4 and budget.waited == pytest.approx(2.0)
    assert outcome.failure is not None and outcome.failure.status == 429
    assert outcome.failure.transient and not outcome.failure.uncertain  # a 429 proves Jira did not act
    assert _with_label(sim, "ifs-PO-B1") == []


def test_concurrent_bulk_calls_wait_against_the_run_budget(sim: Sim) -> None:
    sim.faults(fail_next=[{"status": 429, "count": 4, "retry_after": 0.3, "path_contains": "/issue/bulk"}])
    budget = RateLimitBudget(60)
    with JiraClient.from_connection(basic_connection(sim)) as c, rate_limit_scope(budget):
        outcomes = c.bulk_create([draft(f"PO-C{n}") for n in range(120)], concurrency=3)  # three chunks at once
    assert all(o.ok for o in outcomes)
    # the pool's workers charged the run's budget: three chunks waited 0.3 s side by side (counted once), the
    # fourth 429 came after that wait and cost its own 0.3 s
    assert budget.waited >= 2 * 0.3 - 0.01


# ------------------------------------------------------------------------------------------------ edit


@pytest.mark.parametrize("kind", ["html", "drop_before", "drop_after", "truncated"])
def test_a_passing_fault_on_edit_is_retried_and_the_edit_lands(kind: str, client: JiraClient, sim: Sim) -> None:
    issue = client.create_issue(draft("PO-E1"))
    sim.faults(fail_next=[_rule(kind, f"/issue/{issue.id}", method="PUT")])
    client.edit_issue(issue.id, {"summary": f"edited through {kind}"})
    assert sim.issue(issue.id)["summary"] == f"edited through {kind}"
    assert len(_calls(sim, "PUT", f"/rest/api/3/issue/{issue.id}")) == 2


def test_a_persistent_html_answer_to_edit_is_malformed(client: JiraClient, sim: Sim) -> None:
    issue = client.create_issue(draft("PO-E2"))
    sim.faults(fail_next=[_rule("html", f"/issue/{issue.id}", method="PUT", count=PERSISTENT)])
    with pytest.raises(MalformedResponse) as info:
        client.edit_issue(issue.id, {"summary": "never"})
    assert str(info.value) == (
        f"jira: expected JSON from PUT /rest/api/3/issue/{issue.id}, got text/html (proxy or login page?)"
    )
    assert sim.issue(issue.id)["summary"] == "PO-E2 pump"


def test_a_persistent_reset_on_edit_is_unavailable(client: JiraClient, sim: Sim) -> None:
    issue = client.create_issue(draft("PO-E3"))
    sim.faults(fail_next=[_rule("drop_after", f"/issue/{issue.id}", method="PUT", count=PERSISTENT)])
    with pytest.raises(Unavailable, match="connection lost before the answer to PUT"):
        client.edit_issue(issue.id, {"summary": "acted every time"})
    assert len(_calls(sim, "PUT", f"/rest/api/3/issue/{issue.id}")) == FAST.max_attempts


def test_an_edit_that_hangs_past_the_read_timeout_is_unavailable(sim: Sim) -> None:
    settings = HttpSettings(read_timeout=0.4, max_attempts=2, backoff_initial=0.01, backoff_max=0.02)
    with JiraClient.from_connection(basic_connection(sim, settings)) as slow:
        issue = slow.create_issue(draft("PO-E4"))
        sim.faults(fail_next=[_rule("hang", f"/issue/{issue.id}", method="PUT", count=PERSISTENT, hang_seconds=30)])
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            slow.edit_issue(issue.id, {"summary": "too late"})
    assert time.monotonic() - started < 5
    assert f"no answer to PUT /rest/api/3/issue/{issue.id} in time (ReadTimeout)" in str(info.value)
    assert info.value.not_sent is False
    path = f"/rest/api/3/issue/{issue.id}"
    deadline = time.monotonic() + 10  # both tries are abandoned and logged before the next test resets the sim
    while len(_calls(sim, "PUT", path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [c["status"] for c in _calls(sim, "PUT", path)] == [0, 0]
    assert sim.issue(issue.id)["summary"] == "PO-E4 pump"


# ------------------------------------------------------------------------------------------------ search


@pytest.mark.parametrize("kind", ["html", "truncated", "drop_after"])
def test_a_passing_fault_on_search_is_retried(kind: str, client: JiraClient, sim: Sim) -> None:
    client.create_issue(draft("PO-S1"))
    sim.faults(fail_next=[_rule(kind, "/search/jql", count=2)])
    found = list(client.search('labels = "ifs-PO-S1"', page_size=10, reconcile_issues=()))
    assert len(found) == 1


@pytest.mark.parametrize("kind", ["drop_after", "truncated"])
def test_a_lost_answer_to_a_later_page_is_retried_with_the_same_token(kind: str, client: JiraClient, sim: Sim) -> None:
    created = {client.create_issue(draft(f"PO-P{i}")).id for i in range(5)}
    pages = client.search('labels = "ifs" ORDER BY key ASC', page_size=2)
    found = [next(pages)["id"], next(pages)["id"]]
    sim.control.delete("/_sim/requests")
    # The next page's answer is lost after Jira served it: the token is resent, and Jira serves that page again.
    sim.faults(fail_next=[_rule(kind, "/search/jql")])
    found += [issue["id"] for issue in pages]
    assert sorted(found) == sorted(created) and len(found) == 5
    assert len(_calls(sim, "POST", "/rest/api/3/search/jql")) == 3  # the lost page, its resend, the last page


@pytest.mark.parametrize(
    ("kind", "error", "phrase"),
    [
        ("html", MalformedResponse, "expected JSON from POST /rest/api/3/search/jql, got text/html"),
        ("truncated", Unavailable, "connection lost before the answer to POST /rest/api/3/search/jql"),
    ],
)
def test_a_persistent_fault_on_search_is_classified(
    kind: str, error: type[Exception], phrase: str, client: JiraClient, sim: Sim
) -> None:
    sim.faults(fail_next=[_rule(kind, "/search/jql", count=PERSISTENT)])
    with pytest.raises(error) as info:
        list(client.search("project = PROC"))
    assert phrase in str(info.value)


# ------------------------------------------------------------------------------------------------ OAuth token


@pytest.fixture
def oauth(sim: Sim) -> Iterator[JiraClient]:
    store = MemoryTokenStore()
    consent(sim, store).session.close()
    with JiraClient.from_connection(oauth_connection(sim), token_store=store) as c:
        yield c


@pytest.mark.parametrize("kind", ["html", "drop_before"])
def test_a_token_answer_lost_before_acting_is_transient_and_the_grant_survives(
    kind: str, oauth: JiraClient, sim: Sim
) -> None:
    manager = oauth.token_manager
    assert manager is not None and manager.current is not None
    stale = manager.current.access_token
    sim.faults(fail_next=[_rule(kind, "/oauth/token")])
    with pytest.raises((MalformedResponse, Unavailable)) as info:  # a token POST is not resent blindly
        manager.renew(stale=stale)
    assert not isinstance(info.value, AuthError)
    assert "/oauth/token" in str(info.value) and "sim-oauth-secret" not in str(info.value)
    if kind == "html":
        assert str(info.value) == "jira: expected JSON from POST /oauth/token, got text/html (proxy or login page?)"
    assert manager.renew(stale=stale) != stale  # the refresh token was not used up: it still works
    assert oauth.myself()["accountId"]


def test_a_cut_token_answer_is_transient_not_auth(oauth: JiraClient, sim: Sim) -> None:
    manager = oauth.token_manager
    assert manager is not None and manager.current is not None
    sim.faults(fail_next=[_rule("truncated", "/oauth/token")])
    with pytest.raises(Unavailable, match="connection lost before the answer to POST /oauth/token"):
        manager.renew(stale=manager.current.access_token)
