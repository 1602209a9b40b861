"""The /search/jql iterator: every issue exactly once across pages, with and without index lag; safe JQL quoting."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from conftest import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_connector.jira import DraftIssue, JiraClient, jql

from .helpers import Sim


def _drafts(n: int, prefix: str) -> list[DraftIssue]:
    return [
        DraftIssue(
            fields={"project": {"key": "CAPEX"}, "issuetype": {"name": "Task"}, "summary": f"{prefix}-{i:04d}"},
            labels=(prefix,),
        )
        for i in range(n)
    ]


def test_1000_issues_100_per_page_exactly_once_with_index_lag(basic_client: JiraClient, sim: Sim) -> None:
    sim.faults(index_lag_seconds=1.5)
    outcomes = basic_client.bulk_create(_drafts(1000, "vol"))
    created = {o.issue.id for o in outcomes if o.issue is not None}
    assert len(created) == 1000
    query = jql.order_by(jql.all_of(jql.eq("project", "CAPEX"), jql.eq("labels", "vol")), "key")
    # Right after the writes the index lags: a search sees fewer (the reason callers must not trust one search).
    early = sum(1 for _ in basic_client.search(query, fields=["summary"], page_size=100))
    assert early < 1000

    def all_visible() -> bool:
        return sum(1 for _ in basic_client.search(query, fields=["summary"], properties=[], page_size=100)) == 1000

    wait_until(all_visible, timeout=10, interval=0.2, what="the search index to catch up with 1000 creates")
    sim.control.delete("/_sim/requests")
    ids = [issue["id"] for issue in basic_client.search(query, fields=["summary"], properties=[], page_size=100)]
    assert len(ids) == 1000 and set(ids) == created
    pages = [r for r in sim.requests()["requests"] if r["path"].endswith("/search/jql")]
    assert len(pages) == 10


def test_reconcile_issues_reads_own_writes_despite_lag(basic_client: JiraClient, sim: Sim) -> None:
    sim.faults(index_lag_seconds=30)
    outcomes = basic_client.bulk_create(_drafts(3, "recon"))
    ids = [o.issue.id for o in outcomes if o.issue is not None]
    query = jql.all_of(jql.eq("project", "CAPEX"), jql.eq("labels", "recon"))
    assert list(basic_client.search(query)) == []
    found = {i["id"] for i in basic_client.search(query, reconcile_issues=ids)}
    assert found == set(ids)


def test_search_returns_requested_fields_and_properties(basic_client: JiraClient) -> None:
    draft = DraftIssue(
        fields={"project": {"key": "PROC"}, "issuetype": {"name": "Task"}, "summary": "props"},
        labels=("props",),
        properties={"ml-connector": {"ifsKey": "PO-77"}},
    )
    basic_client.create_issue(draft)
    (issue,) = basic_client.search(jql.eq("labels", "props"), fields=["summary", "labels"], properties=["ml-connector"])
    assert issue["fields"]["summary"] == "props"
    assert issue["properties"]["ml-connector"] == {"ifsKey": "PO-77"}
    assert "status" not in issue["fields"]


def test_updated_bound_with_negative_offset_account(basic_client: JiraClient, sim: Sim) -> None:
    zone = basic_client.time_zone()
    assert zone == "America/Los_Angeles"
    before = basic_client.create_issue(_drafts(1, "upd-before")[0])
    after = basic_client.create_issue(_drafts(1, "upd-after")[0])
    instant = datetime.now(UTC)
    sim.clock(-180)  # "before" is updated three minutes before the instant
    basic_client.edit_issue(before.id, {"summary": "edited before"})
    sim.clock(60)  # "after" is updated one minute after it
    basic_client.edit_issue(after.id, {"summary": "edited after"})
    sim.clock(0)
    both = jql.in_("labels", ["upd-before", "upd-after"])
    found = {i["id"] for i in basic_client.search(jql.all_of(both, basic_client.updated_since_clause(instant)))}
    assert found == {after.id}
    # The same instant rendered as a UTC wall time is read as Los Angeles time: hours in the future, so wrong.
    naive = f'updated >= "{instant.strftime("%Y-%m-%d %H:%M")}"'
    assert {i["id"] for i in basic_client.search(jql.all_of(both, naive))} == set()
    # And a bound a minute after "after" excludes it too (the bound is a real lower limit, not a no-op).
    later = basic_client.updated_since_clause(instant + timedelta(minutes=3))
    assert {i["id"] for i in basic_client.search(jql.all_of(both, later))} == set()


_label_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"))
_value = st.text(alphabet=_label_chars, min_size=1, max_size=20)
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_value, text_value=_text)
def test_any_label_or_property_text_matches_exactly(basic_client: JiraClient, value: str, text_value: str) -> None:
    """A value full of quotes, backslashes, JQL words or parentheses matches exactly the issues that carry it."""
    tag = f"hyp{time.monotonic_ns()}"
    target = DraftIssue(
        fields={"project": {"key": "MAINT"}, "issuetype": {"name": "Task"}, "summary": "target"},
        labels=(tag, value),
        properties={"ml-connector": {"ifsKey": text_value}},
    )
    decoy = DraftIssue(
        fields={"project": {"key": "MAINT"}, "issuetype": {"name": "Task"}, "summary": "decoy"},
        labels=(tag, value + "x"),
        properties={"ml-connector": {"ifsKey": text_value + " "}},
    )
    outcomes = basic_client.bulk_create([target, decoy])
    assert all(o.ok for o in outcomes), [o.failure for o in outcomes]
    target_id = outcomes[0].issue.id if outcomes[0].issue else None
    scope = jql.eq("labels", tag)
    by_label = {i["id"] for i in basic_client.search(jql.all_of(scope, jql.eq("labels", value)), fields=["labels"])}
    assert by_label == {target_id}
    by_prop = {
        i["id"]
        for i in basic_client.search(
            jql.all_of(scope, f"issue.property[ml-connector].ifsKey = {jql.quote(text_value)}")
        )
    }
    assert by_prop == {target_id}
