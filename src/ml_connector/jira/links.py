"""Links to Jira's own pages, shared by the CLI (``records``) and the dashboard."""

from __future__ import annotations


def browse_url(jira_url: str, jira_key: str | None) -> str | None:
    """The issue's page in Jira, the link the README promises."""
    return f"{jira_url.rstrip('/')}/browse/{jira_key}" if jira_key else None
