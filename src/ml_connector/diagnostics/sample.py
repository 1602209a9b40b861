"""``check --sample N``: the first N IFS records of each flow through the mapping, against the data and not only the
metadata. Values the mapping cannot place (projects, priorities, select options, users) are grouped with their record
counts, the config key to fix and a "did you mean" for a near miss. Reads only: GETs, no store, no cache written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, cast

from ml_connector.config.connections import IFS_MAX_PAGE_SIZE
from ml_connector.config.models import ConnectorConfig, FlowConfig, ValueMap
from ml_connector.diagnostics.fixes import reason_fix
from ml_connector.diagnostics.results import FAIL, PASS, WARN, Findings, why
from ml_connector.diagnostics.suggest import with_suggestion
from ml_connector.engine.apply import fallback_email_of
from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.runtime import Connector
from ml_connector.errors import ConfigError, MappingError
from ml_connector.ifs import IfsClient
from ml_connector.jira.client import JiraClient
from ml_connector.mapping import MappingContext, map_issue, mapping_problems
from ml_connector.reasons import USER_NOT_FOUND, flow_path, reason_of
from ml_connector.store import Store

SYSTEM = "mapping"
MAX_USER_LOOKUPS = 100  # distinct assignee emails looked up per flow
Row = dict[str, Any]
# (field, value the mapping could not place, unmapped?, message, reason code) → the keys of the records it stopped
Problems = dict[tuple[str, str, bool, str, str | None], list[str]]


class SampleChecks:
    """The sample check of every enabled flow; the factories are the checker's (real clients, or test doubles)."""

    def __init__(
        self,
        config: ConnectorConfig,
        findings: Findings,
        ifs_factory: Callable[[], IfsClient],
        jira_factory: Callable[[], JiraClient],
        size: int,
    ) -> None:
        self.config = config
        self.findings = findings
        self.size = size
        # Mapping needs no store: the connector gets none, so nothing here can write one; a check reads the metadata
        # Jira and IFS have now, never a kept copy.
        self.connector = Connector(
            config=config,
            store=cast(Store, None),
            ifs_factory=ifs_factory,
            jira_factory=jira_factory,
            keep_metadata=False,
        )

    def run(self) -> None:
        try:
            for flow in self.config.flows:
                if flow.enabled:
                    self.flow(flow)
        finally:
            self.connector.close()

    def flow(self, flow: FlowConfig) -> None:
        name = f"{flow.name}: sample of {self.size}"
        try:
            rows = self._rows(flow)
            ctx = self._context(flow)
            lines = OutboundSync(self.connector, flow).read_lines(rows, key_ordered=True)
        except Exception as exc:  # a read refused or a broken answer: say so, the other flows still run
            where = flow_path([f.name for f in self.config.flows], flow.name)
            self.findings.add(SYSTEM, name, FAIL, why(exc), f"check {where} and the IFS/Jira rows above")
            return
        problems: Problems = defaultdict(list)
        emails: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            key = str(row.get(flow.key))
            own = lines.get(row.get(flow.lines.parent_key), []) if flow.lines else []
            found = mapping_problems(row, flow, ctx, lines=own)
            for error in found:
                problem = (error.field or "", str(error.value or ""), error.unmapped, error.message, error.reason)
                problems[problem].append(key)
            if not found:
                draft = map_issue(row, flow, ctx, lines=own)
                if draft.assignee_email:
                    emails[draft.assignee_email].append(key)
        for (field, value, unmapped, message, reason), keys in sorted(problems.items(), key=lambda item: -len(item[1])):
            error = MappingError(message, field=field, value=value, unmapped=unmapped, reason=reason)
            self._problem(flow, ctx, error, keys)
        self._users(flow, emails)
        if not problems:
            self.findings.add(SYSTEM, name, PASS, f"all {len(rows)} records read map to an issue")

    def _rows(self, flow: FlowConfig) -> list[Row]:
        """The flow's first ``size`` records in key order, as a first sync reads them."""
        rows: list[Row] = []
        select = flow.read_fields() if flow.select else None
        for page in self.connector.ifs.iter_pages(
            flow.entity_set,
            select=select,
            filter=flow.filter,
            orderby=[flow.key],
            key_fields=[flow.key],
            page_size=min(self.size, IFS_MAX_PAGE_SIZE),
        ):
            rows.extend(page.rows)
            if len(rows) >= self.size:
                break
        return rows[: self.size]

    def _context(self, flow: FlowConfig) -> MappingContext:
        """With Jira's projects, priorities and options; without them when a field name does not resolve (that
        failure has its own row above), so the sample still finds unmapped values."""
        try:
            return self.connector.mapping_context(flow)
        except ConfigError:
            return self.connector.mapping_context(flow, with_fields=False)

    def _problem(self, flow: FlowConfig, ctx: MappingContext, error: MappingError, keys: Sequence[str]) -> None:
        """One row per problem, with the fix a real sync's summary names for the same reason."""
        field, value, unmapped, message = error.field or "", str(error.value), error.unmapped, error.message
        count = f"{len(keys)} record{'s' if len(keys) != 1 else ''}"
        reason = reason_of(error)
        fix = reason_fix(self.config, flow.name, reason.code, [reason.value])
        shown = value or f"blank {_source(flow, field)}"
        if unmapped:
            what = {"project": "Jira project", "priority": "Jira priority"}.get(field, f"option for {field!r}")
            detail = f"{shown} ({count}) has no {what}"
        elif field == "project" and ctx.jira_projects is not None:
            detail = with_suggestion(f"Jira project {value!r} ({count}) does not exist", value, ctx.jira_projects)
        elif field == "priority" and ctx.priorities is not None:
            detail = with_suggestion(f"Jira priority {value!r} ({count}) does not exist", value, ctx.priorities)
        elif (target := ctx.fields.get(field)) is not None and target.allowed is not None and value:
            detail = with_suggestion(f"{value!r} ({count}) is not an option of {field!r}", value, target.allowed)
        else:
            detail = f"{message} ({count}, e.g. {keys[0]})"
        self.findings.add(SYSTEM, f"{flow.name}: {field or 'record'} {shown}", FAIL, detail, fix)

    def _users(self, flow: FlowConfig, emails: dict[str, list[str]]) -> None:
        """Assignees without a Jira user: their issues go to the fallback user, or stay unassigned."""
        fallback = fallback_email_of(flow)
        for email, keys in sorted(emails.items(), key=lambda item: -len(item[1]))[:MAX_USER_LOOKUPS]:
            if self.connector.jira.users.resolve(email).found:
                continue
            then = f"assigned to {fallback}" if fallback and email != fallback else "left unassigned"
            self.findings.add(
                SYSTEM,
                f"{flow.name}: assignee {email}",
                WARN,
                f"{email} ({len(keys)} records) has no Jira user: {then}",
                reason_fix(self.config, flow.name, USER_NOT_FOUND, [email]),
            )


def _source(flow: FlowConfig, field: str) -> str:
    """The IFS value a mapped field is looked up by (``ProjectId``), for a blank value's name."""
    mapping = flow.mapping
    spec = {"project": mapping.project, "priority": mapping.priority}.get(field, mapping.custom_fields.get(field))
    return spec.source if isinstance(spec, ValueMap) else field
