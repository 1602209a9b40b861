"""Per flow on Jira: every configured custom field resolves to one field, and every field the create screen requires
is mapped (or has a default)."""

from __future__ import annotations

from functools import partial

from ml_connector.config.models import FlowConfig, IssueMapping
from ml_connector.diagnostics.results import FAIL, PASS, Findings
from ml_connector.diagnostics.suggest import did_you_mean
from ml_connector.errors import ConfigError
from ml_connector.jira.client import JiraClient
from ml_connector.jira.fields import FieldRegistry, split_field_name


def check_custom_fields(findings: Findings, registry: FieldRegistry, where: str, flow: FlowConfig) -> dict[str, str]:
    """Each configured custom field → its id (those that resolve); a failure's fix says how to pick the field."""
    resolved: dict[str, str] = {}
    for configured in flow.mapping.custom_fields:
        name = f"{flow.name}: field {configured!r}"
        try:
            field_id = registry.resolve_configured(configured)
        except ConfigError as exc:
            findings.add("jira", name, FAIL, exc.message, _custom_field_fix(registry, where, configured))
            continue
        resolved[configured] = field_id
        findings.add("jira", name, PASS, f"resolves to {field_id}")
    return resolved


def _custom_field_fix(registry: FieldRegistry, where: str, configured: str) -> str:
    name, _ = split_field_name(configured)
    candidates = registry.candidates(name)
    if len(candidates) > 1:
        return (
            f"in {where}.mapping.custom_fields write the field id ("
            + " or ".join(f.id for f in candidates)
            + f") or add a type suffix, e.g. '{name}:text' or '{name}:select'"
        )
    suggestion = did_you_mean(name, registry.names())
    fix = f"correct the field name in {where}.mapping.custom_fields"
    return f"{fix}: {suggestion}" if suggestion else f"{fix}, or create the field in Jira"


def check_create_screens(
    findings: Findings, jira: JiraClient, projects: list[str], where: str, flow: FlowConfig, resolved: dict[str, str]
) -> None:
    """In each of the flow's projects: the issue type is creatable and its create screen needs nothing unmapped."""
    mapping = flow.mapping
    covered = _mapped_fields(mapping, resolved)
    for project in projects:
        type_id = _creatable_type(findings, jira, project, where, mapping)
        if type_id is None:
            continue
        fields = findings.guard(
            "jira",
            f"{project}: create screen",
            "check Create permission",
            partial(jira.create_fields, project, type_id),
        )
        if fields is None:
            continue
        missing = [
            f"{f.get('name')} ({f.get('fieldId') or f.get('key')})"
            for f in fields
            if f.get("required")
            and not f.get("hasDefaultValue")
            and str(f.get("fieldId") or f.get("key")) not in covered
        ]
        name = f"{project}/{mapping.issue_type}: required fields"
        if missing:
            findings.add(
                "jira",
                name,
                FAIL,
                f"required on the create screen but not mapped: {', '.join(missing)}",
                f"add them to {where}.mapping.custom_fields (or make them optional in Jira)",
            )
        else:
            findings.add("jira", name, PASS, "every required field is mapped")


def _mapped_fields(mapping: IssueMapping, resolved: dict[str, str]) -> set[str]:
    """The Jira field ids a created issue carries."""
    covered = {"project", "issuetype", "summary", "reporter", *resolved.values()}
    optional: dict[str, object] = {
        "description": mapping.description,
        "priority": mapping.priority,
        "assignee": mapping.assignee,
        "labels": mapping.labels,
    }
    covered.update(field for field, spec in optional.items() if spec)
    return covered


def _creatable_type(
    findings: Findings, jira: JiraClient, project: str, where: str, mapping: IssueMapping
) -> str | None:
    """The id of the mapped issue type if ``project`` lets the connector create it."""
    types = findings.guard(
        "jira", f"{project}: issue types", "check Create permission", partial(jira.create_issue_types, project)
    )
    if types is None:
        return None
    name = f"{project}: issue type {mapping.issue_type!r}"
    match = next((t for t in types if t.get("name") == mapping.issue_type), None)
    if match is None:
        names = ", ".join(sorted(str(t.get("name")) for t in types))
        findings.add(
            "jira", name, FAIL, f"not creatable in {project}", f"set {where}.mapping.issue_type to one of: {names}"
        )
        return None
    findings.add("jira", name, PASS, f"id {match.get('id')}")
    return str(match["id"])
