"""Times, durations and Jira links as the dashboard shows them: readable, exact on hover, never raw HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml_connector.web.display import absolute, cursor, duration, jira_link, parse_time, span, when

NOW = datetime(2026, 12, 5, 4, 10, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (192, "3 min 12 s"),
        (600, "10 min"),
        (754, "12 min"),
        (7500, "2 h 5 min"),
        (7200, "2 h"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
        (86400, "1 d"),
    ],
)
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


def test_recent_times_are_relative_and_older_ones_absolute_with_the_exact_time_as_title() -> None:
    recent = str(when(NOW - timedelta(minutes=3), now=NOW))
    assert ">3 min ago</time>" in recent
    assert 'title="2026-12-05T04:07:30.123456+00:00"' in recent
    assert ">just now<" in str(when(NOW, now=NOW))
    assert ">in 5 min<" in str(when(NOW + timedelta(minutes=5), now=NOW))
    old = str(when(NOW - timedelta(days=2), now=NOW))
    assert ">2026-12-03 04:10 UTC</time>" in old
    assert str(when(None)) == "—"


def test_a_naive_time_is_utc_and_text_that_is_no_time_is_escaped() -> None:
    assert parse_time(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time("2026-12-05T04:10:00Z") == datetime(2026, 12, 5, 4, 10, tzinfo=UTC)
    assert parse_time("page 3") is None
    assert str(when("<b>x</b>")) == "&lt;b&gt;x&lt;/b&gt;"


def test_a_cursor_shows_minutes_and_keeps_the_raw_value_on_hover() -> None:
    shown = str(cursor("2026-12-05T04:10:30.123456+00:00"))
    assert ">2026-12-05 04:10 UTC</time>" in shown
    assert 'title="2026-12-05T04:10:30.123456+00:00"' in shown
    assert ".123456" not in shown.split(">", 1)[1]
    assert str(cursor(None)) == "—"
    assert str(cursor("token&<1>")) == "token&amp;&lt;1&gt;"
    assert absolute(datetime(2026, 1, 1, 1, 2, 3, tzinfo=UTC)) == "2026-01-01 01:02 UTC"


def test_duration() -> None:
    assert duration(NOW, NOW + timedelta(seconds=75)) == "1 min 15 s"
    assert duration(NOW, None) == "running"
    assert duration(None, None) == "—"
    assert duration(datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)) == "5 s"


def test_jira_link_opens_the_issue_in_a_new_tab_and_escapes() -> None:
    link = str(jira_link("PROC-12", "https://acme.atlassian.net/"))
    assert link == (
        '<a class="jira" href="https://acme.atlassian.net/browse/PROC-12" target="_blank" '
        'rel="noopener noreferrer">PROC-12</a>'
    )
    assert str(jira_link(None, "https://acme.atlassian.net")) == "—"
    hostile = str(jira_link('X"><script>', "https://acme.atlassian.net"))
    assert "<script>" not in hostile and "&#34;&gt;&lt;script&gt;" in hostile
