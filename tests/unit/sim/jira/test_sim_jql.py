"""The simulator's JQL lexer/parser/compiler and ADF validator, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ml_connector.sim.jira.adf import INVALID_CONTENT, NOT_A_DOCUMENT, validate_adf
from ml_connector.sim.jira.jql import Index, JqlEnv, JqlError, compile_query, parse, tokenize, webhook_filter_error
from ml_connector.sim.jira.model import Issue

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
