"""How the dashboard shows times, durations and Jira keys: readable text, the exact value on hover.

Jinja2 filters; each returns escaped markup, so a value from the store can never inject HTML.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

from ml_connector.jira.links import browse_url

RELATIVE_WITHIN = timedelta(hours=12)  # nearer than this: "3 min ago"; further: the date and time


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(value: datetime | str | None) -> datetime | None:
    """A stored time (a datetime, or ISO text such as a cursor); None when absent or not a time."""
    if value is None or isinstance(value, datetime):
        return _aware(value) if value else None
    try:
        return _aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def absolute(value: datetime) -> str:
    """``2026-12-05 04:10 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def span(seconds: float) -> str:
    """A length of time as people say it: ``45 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    return f"{secs} s"


def relative(value: datetime, now: datetime) -> str:
    delta = (now - value).total_seconds()
    if abs(delta) < 45:
        return "just now"
    return f"{span(delta)} ago" if delta > 0 else f"in {span(delta)}"


def when(value: datetime | str | None, now: datetime | None = None) -> Markup:
    """A ``<time>`` element: "3 min ago" when recent, else "2026-12-05 04:10 UTC"; the exact ISO time as title."""
    moment = parse_time(value)
    if moment is None:
        return escape(value) if value else Markup("—")
    now = now or datetime.now(UTC)
    text = relative(moment, now) if abs(now - moment) < RELATIVE_WITHIN else absolute(moment)
    exact = moment.astimezone(UTC).isoformat()
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(exact, text)


def cursor(value: str | None) -> Markup:
    """A sync cursor (an ISO timestamp, or a write-back cursor's text): the date and time, the raw value on hover."""
    moment = parse_time(value)
    if moment is None:
        return escape(value) if value else Markup("—")
    return Markup('<time datetime="{0}" title="{1}">{2}</time>').format(
        moment.astimezone(UTC).isoformat(), value, absolute(moment)
    )


def duration(started: datetime | None, finished: datetime | None) -> str:
    """A run's duration (finished minus started); a run still going shows "running"."""
    if started is None:
        return "—"
    if finished is None:
        return "running"
    return span((_aware(finished) - _aware(started)).total_seconds())


def jira_link(key: str | None, jira_url: str) -> Markup:
    """The key as a link to the issue in Jira, in a new tab (noopener: the new page cannot reach this one)."""
    url = browse_url(jira_url, key)
    if url is None:
        return Markup("—")
    return Markup('<a class="jira" href="{0}" target="_blank" rel="noopener noreferrer">{1}</a>').format(url, key)
