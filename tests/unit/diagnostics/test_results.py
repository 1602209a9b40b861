from __future__ import annotations

from ml_connector.diagnostics.results import FAIL, PASS, Findings, why
from ml_connector.errors import Rejected, Unavailable


def test_details_and_fixes_never_show_a_configured_secret() -> None:
    findings = Findings(("s3cr3t-Value-4711",))
    result = findings.add("ifs", "IFS token", FAIL, "refused s3cr3t-Value-4711", "replace s3cr3t-Value-4711")
    assert "s3cr3t-Value-4711" not in result.detail + (result.fix or "")
    assert result.failed and findings.results == [result]


def test_guard_returns_the_value_or_records_the_failure() -> None:
    findings = Findings(())
    assert findings.guard("jira", "Jira fields", "check jira.url", lambda: 42) == 42
    assert findings.results == []

    def refused() -> int:
        raise Rejected("400 no such thing", system="jira")

    assert findings.guard("jira", "Jira fields", "check jira.url", refused) is None
    [result] = findings.results
    assert (result.system, result.name, result.status) == ("jira", "Jira fields", FAIL)
    assert result.detail == "jira: 400 no such thing" and result.fix == "check jira.url"


def test_why_names_an_unexpected_error_by_its_type() -> None:
    assert why(Unavailable("down", system="ifs")) == "ifs: down"
    assert why(ValueError("bad")) == "ValueError: bad"
    assert PASS != FAIL
