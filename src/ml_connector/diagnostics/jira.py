"""The Jira side: sign-in, the projects the flows map to, then per flow its fields, create screen, priorities,
write-back statuses and users. Reads only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ml_connector.config.models import ConnectorConfig, FlowConfig
from ml_connector.diagnostics.fixes import jira_connection_fix, jira_credentials_fix
from ml_connector.diagnostics.jira_fields import check_create_screens, check_custom_fields
from ml_connector.diagnostics.jira_users import check_users
from ml_connector.diagnostics.results import FAIL, PASS, WARN, Findings
from ml_connector.errors import AuthError, ConnectorError, NotFound
from ml_connector.jira.client import JiraClient
from ml_connector.reasons import flow_path

STATUS_CATEGORIES = {"new", "indeterminate", "done"}
CHECK_URL = "check jira.url"


def _projects_of(flow: FlowConfig, visible: set[str]) -> list[str]:
    keys = [flow.mapping.project.default, *flow.mapping.project.map.values()]
    return sorted({k for k in keys if k and k in visible})


class JiraChecks:
    """The Jira checks; ``samples`` reads a few IFS persons' emails for a flow (none when IFS is not usable)."""

    def __init__(
        self,
        config: ConnectorConfig,
        findings: Findings,
        jira_factory: Callable[[], JiraClient],
        samples: Callable[[FlowConfig], list[str]],
    ) -> None:
        self.config = config
        self.findings = findings
        self._jira_factory = jira_factory
        self._samples = samples

    def connect(self) -> JiraClient | None:
        """A signed-in client (the caller closes it), or None after recording why there is none."""
        try:
            jira = self._jira_factory()
        except AuthError as exc:
            self.findings.fail("jira", "Jira authentication", exc, self._auth_fix())
            return None
        except ConnectorError as exc:
            self.findings.fail(
                "jira", "Jira client", exc, f"{jira_connection_fix(self.config)} and the jira.auth section"
            )
            return None
        try:
            me = jira.myself()
        except ConnectorError as exc:
            fix = self._auth_fix() if isinstance(exc, AuthError) else jira_connection_fix(self.config)
            self.findings.fail("jira", "Jira authentication", exc, fix)
            jira.close()
            return None
        name = me.get("displayName") or me.get("accountId")
        self.findings.add("jira", "Jira authentication", PASS, f"signed in as {name}")
        return jira

    def _auth_fix(self) -> str:
        return jira_credentials_fix(self.config)

    def flows(self, jira: JiraClient) -> None:
        flows = [f for f in self.config.flows if f.enabled]
        visible = self._projects(jira, flows)
        if visible is None:
            return
        registry = self.findings.guard("jira", "Jira fields", CHECK_URL, jira.fields)
        priorities = self.findings.guard("jira", "Jira priorities", CHECK_URL, jira.priorities)
        names = [f.name for f in self.config.flows]
        for flow in flows:
            where = flow_path(names, flow.name)
            resolved = check_custom_fields(self.findings, registry, where, flow) if registry is not None else {}
            projects = _projects_of(flow, visible)
            check_create_screens(self.findings, jira, projects, where, flow, resolved)
            if priorities is not None:
                self._priorities(priorities, where, flow)
            self._writeback_statuses(jira, projects, where, flow)
            check_users(self.findings, jira, where, flow, self._samples)

    def _projects(self, jira: JiraClient, flows: list[FlowConfig]) -> set[str] | None:
        """The mapped project keys the connector's user sees (each checked), or None if Jira could not list them."""
        wanted: dict[str, list[str]] = {}
        names = [f.name for f in self.config.flows]
        for flow in flows:
            for key in [flow.mapping.project.default, *flow.mapping.project.map.values()]:
                if key:
                    wanted.setdefault(key, []).append(f"{flow_path(names, flow.name)}.mapping.project")
        found = self.findings.guard("jira", "Jira projects", CHECK_URL, lambda: jira.projects(sorted(wanted)))
        if found is None:
            return None
        visible = {str(p.get("key")) for p in found}
        for key, paths in sorted(wanted.items()):
            if key in visible:
                self.findings.add("jira", f"project {key}", PASS, "exists and is visible")
            else:
                self.findings.add(
                    "jira",
                    f"project {key}",
                    FAIL,
                    f"no project {key} is visible to the connector's user",
                    f"correct {paths[0]} or give the user Browse/Create permission in {key}",
                )
        return visible

    def _priorities(self, priorities: list[dict[str, Any]], where: str, flow: FlowConfig) -> None:
        spec = flow.mapping.priority
        if spec is None:
            return
        names = {str(p.get("name")) for p in priorities}
        wanted = {*spec.map.values(), *([spec.default] if spec.default else [])}
        missing = sorted(w for w in wanted if w not in names)
        self.findings.add(
            "jira",
            f"{flow.name}: priorities",
            FAIL if missing else PASS,
            f"unknown: {', '.join(missing)}" if missing else f"{len(wanted)} priorities exist",
            f"use Jira's names in {where}.mapping.priority: {', '.join(sorted(names))}" if missing else None,
        )

    def _writeback_statuses(self, jira: JiraClient, projects: list[str], where: str, flow: FlowConfig) -> None:
        wb = flow.writeback
        if not wb.enabled:
            return
        bad_categories = sorted(set(wb.categories) - STATUS_CATEGORIES)
        if bad_categories:
            self.findings.add(
                "jira",
                f"{flow.name}: write-back categories",
                FAIL,
                f"unknown: {', '.join(bad_categories)}",
                f"use new, indeterminate or done in {where}.writeback.categories",
            )
        if not wb.statuses:
            return
        statuses = self._workflow_statuses(jira, projects, flow)
        if statuses is None:
            return
        missing = sorted(s for s in wb.statuses if s not in statuses)
        self.findings.add(
            "jira",
            f"{flow.name}: write-back statuses",
            FAIL if missing else PASS,
            f"not in the project workflows: {', '.join(missing)}" if missing else f"{len(wb.statuses)} statuses exist",
            f"correct {where}.writeback.statuses; workflow statuses: {', '.join(sorted(statuses))}"
            if missing
            else None,
        )

    def _workflow_statuses(self, jira: JiraClient, projects: list[str], flow: FlowConfig) -> set[str] | None:
        """Every status name in the projects' workflows, or None after recording why they cannot be listed."""
        name = f"{flow.name}: write-back statuses"
        statuses: set[str] = set()
        for project in projects:
            try:
                _, issue_types = jira.session.request_json(
                    "GET", f"/rest/api/3/project/{project}/statuses", expect=list, pace_keys=("burst:read",)
                )
            except NotFound:
                self.findings.add("jira", name, WARN, "this Jira does not list project statuses; not verified", None)
                return None
            except ConnectorError as exc:
                self.findings.fail("jira", name, exc, "check Browse permission")
                return None
            for issue_type in issue_types:
                for status in issue_type.get("statuses") or []:
                    statuses.add(str(status.get("name")))
        return statuses
