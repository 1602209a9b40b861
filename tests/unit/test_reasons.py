"""ml_connector.reasons: an error's stable reason code, from the raise site or from the error's class."""

from __future__ import annotations

import pytest

from ml_connector import reasons
from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    MalformedResponse,
    MappingError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)
from ml_connector.reasons import Reason, reason_of


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MappingError("x", reason=reasons.UNMAPPED_PROJECT, value="PRJ-1005"), Reason("unmapped_project", "PRJ-1005")),
        (MappingError("a mapping error nobody coded"), Reason(reasons.MAPPING_OTHER)),
        (RateLimited("slow", system="jira"), Reason(reasons.RATE_LIMITED, "jira")),
        (MalformedResponse("html", system="ifs"), Reason(reasons.MALFORMED_RESPONSE, "ifs")),
        (Unavailable("503", system="ifs-iam"), Reason(reasons.UNAVAILABLE, "ifs")),
        (AuthError("403", system="jira", status=403), Reason(reasons.PERMISSION_DENIED, "jira")),
        (ConcurrencyConflict("412", system="ifs"), Reason(reasons.CONFLICT, "ifs")),
        (NotFound("404", system="jira"), Reason(reasons.NOT_FOUND, "jira")),
        (
            Rejected("400", system="jira", status=400, details={"errors": {"priority": "bad", "customfield_1": "x"}}),
            Reason(reasons.JIRA_REJECTED, "customfield_1, priority"),
        ),
        (Rejected("400", system="ifs", status=400), Reason(reasons.IFS_REJECTED, "400")),
        (KeyError("a bug"), Reason(reasons.INTERNAL)),
    ],
)
def test_reason_of(error: BaseException, expected: Reason) -> None:
    assert reason_of(error) == expected


def test_values_are_one_line_and_bounded() -> None:
    reason = Reason.of(reasons.UNMAPPED_PROJECT, "a\nb  " + "x" * 500)
    assert reason.value is not None and reason.value.startswith("a b x") and len(reason.value) == 300
    assert Reason.of(reasons.UNMAPPED_PROJECT, "   ").value is None


def test_field_values_split_at_the_first_equals_sign() -> None:
    assert reasons.split_field_value(reasons.field_value("Tier", "a=b")) == ("Tier", "a=b")
