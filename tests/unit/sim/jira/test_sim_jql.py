"""The simulator's JQL lexer/parser/compiler and ADF validator, without HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ml_connector.sim.jira.adf import INVALID_CONTENT, NOT_A_DOCUMENT, validate_adf
from ml_connector.sim.jira.jql import (
    Index,
    JqlEnv,
    JqlError,
    UserRef,
    compile_query,
    parse,
    tokenize,
    webhook_filter_error,
)
from ml_connector.sim.jira.model import Issue, StatusMove

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def env() -> JqlEnv:
    return JqlEnv(users=[], current_account="me", tz=LA, now=NOW, key_to_id=lambda k: {"PROC-1": 1}.get(k))


def issue(**kw: object) -> Issue:
    base: dict[str, object] = {
        "id": 1,
        "key": "PROC-1",
        "project": "PROC",
        "issuetype": "10001",
        "status": "10000",
        "created": NOW,
        "updated": NOW,
        "status_changed": NOW,
    }
    base.update(kw)
    return Issue(**base)  # type: ignore[arg-type]


def test_quoted_strings_follow_jira_escapes() -> None:
    tok = tokenize(r'summary ~ "say \"hi\" \\ \u0041\ b"')[2]
    assert (tok.kind, tok.text) == ("STR", 'say "hi" \\ A b')
    assert tokenize("labels = 'it\\'s'")[2].text == "it's"
    with pytest.raises(JqlError, match="illegal JQL escape"):
        tokenize(r'summary ~ "\x"')


def test_precedence_and_not() -> None:
    q = parse("a = 1 OR b = 2 AND NOT c = 3 ORDER BY updated DESC")
    assert q.order == (("updated", True),)
    assert type(q.where).__name__ == "BoolOp" and q.where.op == "or"  # type: ignore[union-attr]


def test_datetimes_in_account_zone_at_minute_precision() -> None:
    # 2025-07-01 05:00:59 in Los Angeles (UTC-7 in summer)
    it = issue(updated=datetime(2025, 7, 1, 12, 0, 59, tzinfo=UTC))
    assert compile_query('updated >= "2025-07-01 05:00"', env()).pred(it)
    assert compile_query('updated = "2025-07-01 05:00"', env()).pred(it)
    assert not compile_query('updated > "2025-07-01 05:00"', env()).pred(it)
    assert compile_query('updated >= "2025/07/01"', env()).pred(it)
    assert compile_query("updated >= -1m", env()).pred(it)
    assert not compile_query("updated >= -0m AND updated < -0m", env()).pred(it)


def test_candidates_come_from_indexes() -> None:
    ix = Index()
    for n, (project, labels) in enumerate([("PROC", ["a"]), ("MAINT", ["a"]), ("PROC", ["b"])], start=1):
        ix.add(issue(id=n, key=f"{project}-{n}", project=project, labels=labels))
    compiled = compile_query("project = PROC AND labels = a", env())
    assert compiled.cand(ix) == {1}
    assert compile_query("project = PROC OR summary ~ x", env()).cand(ix) is None
    ix.add(issue(id=1, key="PROC-1", project="PROC", labels=["b"]))  # re-indexing replaces old postings
    assert compiled.cand(ix) == set()


def test_not_equal_never_matches_empty_fields() -> None:
    assert not compile_query("labels != x", env()).pred(issue(labels=[]))
    assert compile_query("labels != x", env()).pred(issue(labels=["y"]))
    assert not compile_query("assignee != currentUser()", env()).pred(issue())


def test_webhook_filter_subset() -> None:
    assert webhook_filter_error("project IN (PROC, MAINT) AND status != Done") is None
    assert webhook_filter_error("watchCount = 1") == "The clause watchCount is unsupported"
    assert webhook_filter_error("summary ~ x") == "The clause summary is unsupported"


def test_adf_validation() -> None:
    doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}
    assert validate_adf(doc) is None
    assert validate_adf("text") == NOT_A_DOCUMENT
    assert validate_adf({**doc, "content": [{"type": "text", "text": "x"}]}) == INVALID_CONTENT  # inline at top level
    empty = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}
    assert validate_adf(empty) == INVALID_CONTENT
    assert (
        validate_adf({"type": "doc", "version": 1, "content": [{"type": "bulletList", "content": []}]})
        == INVALID_CONTENT
    )


def _moved(*moves: tuple[datetime, str, str, str]) -> Issue:
    return issue(status_moves=tuple(StatusMove(when, old, new, actor) for when, old, new, actor in moves))


def test_status_changed_searches_the_status_history() -> None:
    people = [UserRef("ana", "Ana Alvarez", "ana@example.com", False), UserRef("me", "Connector", "c@x.io", False)]
    site = JqlEnv(users=people, current_account="me", tz=LA, now=NOW, key_to_id=lambda k: None)
    # To Do (10000) -> In Progress (3) by Ana at 05:00:30 Los Angeles time
    it = _moved((datetime(2025, 7, 1, 12, 0, 30, tzinfo=UTC), "10000", "3", "ana"))
    assert compile_query("status CHANGED", site).pred(it)
    assert not compile_query("status CHANGED", site).pred(issue())  # created, never moved
    assert compile_query('status CHANGED AFTER "2025-07-01 05:00"', site).pred(it)
    assert not compile_query('status CHANGED AFTER "2025-07-01 05:01"', site).pred(it)
    assert compile_query('status CHANGED BEFORE "2025-07-01 05:01"', site).pred(it)
    assert compile_query('status CHANGED ON "2025-07-01"', site).pred(it)
    assert not compile_query('status CHANGED ON "2025-06-30"', site).pred(it)
    assert compile_query('status CHANGED DURING ("2025-07-01 04:00", "2025-07-01")', site).pred(it)
    assert compile_query('status CHANGED FROM "To Do" TO "In Progress" BY "ana@example.com"', site).pred(it)
    assert not compile_query("status CHANGED BY currentUser()", site).pred(it)
    assert not compile_query('status CHANGED TO Done AFTER "2025-07-01 05:00"', site).pred(it)
    # every predicate must hold for one change, not each for some change
    two = _moved(
        (datetime(2025, 7, 1, 10, 0, tzinfo=UTC), "10000", "3", "me"),
        (datetime(2025, 7, 1, 12, 30, tzinfo=UTC), "3", "10001", "ana"),
    )
    assert not compile_query('status CHANGED BY currentUser() AFTER "2025-07-01 05:00"', site).pred(two)
    assert compile_query('status CHANGED BY ana AFTER "2025-07-01 05:00"', site).pred(two)
    assert compile_query("project = PROC AND updated >= -1d AND status CHANGED AFTER -1d", site).bounded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('summary CHANGED AFTER "2025-07-01"', "History searches do not support the 'summary' field."),
        ("labels CHANGED", "History searches do not support the 'labels' field."),
        ("assignee CHANGED", "not supported by this simulator"),
        ('status CHANGED AFTER "yesterday"', "Date value 'yesterday' for field 'status' is invalid"),
        ('status CHANGED DURING ("2025-07-01")', "DURING takes exactly two dates"),
        ("status CHANGED AFTER EMPTY", "EMPTY is not allowed after 'AFTER'"),
        ('status CHANGED TO "Nope"', "The value 'Nope' does not exist for the field 'status'."),
        ("status CHANGED AFTER", "Expecting either a value, list or function before the end of the query."),
    ],
)
def test_status_changed_refuses_what_jira_refuses(text: str, message: str) -> None:
    with pytest.raises(JqlError, match=re.escape(message)):
        compile_query(text, env())


def test_a_webhook_filter_takes_no_history_search() -> None:
    assert webhook_filter_error('status CHANGED AFTER "2025-07-01"') == "The operator CHANGED is unsupported"
