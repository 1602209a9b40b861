"""Per flow on Jira: the assignee emails the config names resolve to accounts, and so do a few IFS persons'."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ml_connector.config.models import FlowConfig
from ml_connector.diagnostics.results import FAIL, PASS, WARN, Findings
from ml_connector.jira.client import JiraClient
from ml_connector.jira.users import UserResolution

BROWSE_USERS = "check Browse users permission"


def check_users(
    findings: Findings, jira: JiraClient, where: str, flow: FlowConfig, samples: Callable[[FlowConfig], list[str]]
) -> None:
    """Static emails must resolve (a failure); IFS samples that do not resolve only warn (the fallback applies)."""
    assignee = flow.mapping.assignee
    if assignee is None:
        return
    static = sorted({*assignee.emails.values(), *([assignee.fallback_email] if assignee.fallback_email else [])})
    for email in static:
        resolution = _resolve(findings, jira, email)
        if resolution is None:
            continue
        findings.add(
            "jira",
            f"{flow.name}: user {email}",
            PASS if resolution.found else FAIL,
            "resolves to an account" if resolution.found else "no Jira account with this email",
            None if resolution.found else f"correct {where}.mapping.assignee or invite the user to Jira",
        )
    emails = samples(flow)
    if emails:
        _sample_users(findings, jira, flow, emails)


def _resolve(findings: Findings, jira: JiraClient, email: str) -> UserResolution | None:
    return findings.guard("jira", f"user {email}", BROWSE_USERS, partial(jira.users.resolve, email))


def _sample_users(findings: Findings, jira: JiraClient, flow: FlowConfig, emails: list[str]) -> None:
    unresolved = []
    for email in emails:
        resolution = _resolve(findings, jira, email)
        if resolution is not None and not resolution.found:
            unresolved.append(email)
    findings.add(
        "jira",
        f"{flow.name}: sample users",
        WARN if unresolved else PASS,
        f"{len(emails) - len(unresolved)} of {len(emails)} IFS persons resolve"
        + (f"; not found: {', '.join(unresolved)}" if unresolved else ""),
        "those issues get the fallback assignee; set mapping.assignee.emails or fallback_email" if unresolved else None,
    )
