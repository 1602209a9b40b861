"""The dry run's preview: per record, what the run would write to Jira, by field name.

Built from the planner's plans and the payload code the real run sends (``apply.issue_payload``/``edit_payload``), so a
preview cannot drift from what a sync writes. Reads only: user lookups are not cached in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ml_connector.config.models import FlowConfig
from ml_connector.engine.apply import draft_from_dict, edit_payload, fallback_email_of, issue_payload
from ml_connector.engine.failures import describe, error_class
from ml_connector.engine.plan import Create, Fail, Plan, Reconcile, Skip, Update
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.jira import adf
from ml_connector.jira.fields import FieldRegistry
from ml_connector.mapping import FieldTarget, IssueDraft
from ml_connector.reasons import fix_for, reason_of

AccountLookup = Callable[[set[str]], Mapping[str, str | None]]
# Jira's names of the system fields a payload carries (GET /field names them too; this covers a registry without them)
SYSTEM_NAMES = {
    "project": "Project",
    "issuetype": "Issue Type",
    "summary": "Summary",
    "description": "Description",
    "priority": "Priority",
    "assignee": "Assignee",
    "labels": "Labels",
}


class Previewer:
    """Turns one flow's plans into record previews; ``metadata`` gives the resolved fields and the field registry
    (asked only when some plan needs a payload), ``accounts`` resolves emails to Jira accounts without caching;
    ``flows`` are the configured flows (``flow`` among them), which a failure's fix names the flow's path among."""

    def __init__(
        self,
        flow: FlowConfig,
        metadata: Callable[[], tuple[Mapping[str, FieldTarget], FieldRegistry]],
        accounts: AccountLookup,
        *,
        flows: Sequence[FlowConfig],
    ) -> None:
        self.flow = flow
        self.flows = flows
        self._metadata = metadata
        self._lookup = accounts
        self._accounts: dict[str, str | None] = {}  # across pages: each email is looked up once per run
        self.fallback = fallback_email_of(flow)

    def add_page(self, plans: Sequence[Plan], report: RunReport) -> None:
        """Count every plan as ``would_<action>`` (failures by reason code, as a real run counts them) and keep
        previews up to the limit."""
        self._resolve(plans)
        for plan in plans:
            action = self.preview(plan)
            report.add(f"would_{action.action}")
            if action.cause is not None:
                report.note_cause(action.cause, action.reason or "")
            report.keep_planned(action)

    def preview(self, plan: Plan) -> PlannedAction:
        """One record's preview (its assignee looked up unless :meth:`add_page` did for the whole page)."""
        self._resolve([plan])
        if isinstance(plan, Fail):
            return self._failed(plan.key, plan.error)
        if isinstance(plan, Skip):
            return PlannedAction(plan.key, "skip", plan.draft.summary if plan.draft else None)
        try:
            if isinstance(plan, Create | Reconcile):
                fields, warnings = self._payload(plan.draft)
                named = self.named(fields, plan.draft)
                return PlannedAction(plan.key, "create", plan.draft.summary, fields=named, warnings=warnings)
            return self._update(plan)
        except Exception as exc:  # the payload a real run would fail to build fails the record there too
            return self._failed(plan.key, exc)

    def _failed(self, key: str, error: BaseException) -> PlannedAction:
        cause = reason_of(error)
        fix = fix_for(self.flows, self.flow.name, cause.code, [cause.value])
        return PlannedAction(key, "fail", reason=describe(error), error_class=error_class(error), fix=fix, cause=cause)

    def _update(self, plan: Update) -> PlannedAction:
        new_fields, warnings = self._payload(plan.draft)
        new, new_labels = edit_payload(new_fields)
        old: dict[str, Any] = {}
        old_labels: list[str] = []
        old_draft = draft_from_dict(plan.existing.draft) if plan.existing.draft else None
        if old_draft is not None:
            try:
                old, old_labels = edit_payload(self._payload(old_draft)[0])
            except Exception:
                old_draft = None  # the last content no longer maps (the config changed): show every field as new
        before, after = self.named(old, old_draft), self.named(new, plan.draft)
        changes: dict[str, Any] = {
            name: {"from": before.get(name), "to": value} for name, value in after.items() if before.get(name) != value
        }
        added = [label for label in new_labels if label not in old_labels]
        if added:
            changes[self._name("labels")] = {"add": added}
        return PlannedAction(plan.key, "update", plan.draft.summary, fields=changes, warnings=warnings)

    def _payload(self, draft: IssueDraft) -> tuple[dict[str, Any], list[str]]:
        fields_ctx, _ = self._metadata()
        fields, warnings = issue_payload(draft, self._accounts, fields_ctx, self.fallback)
        return fields, [*draft.warnings, *warnings]

    def _resolve(self, plans: Sequence[Plan]) -> None:
        """Look up, once, the Jira accounts of the page's assignees (new and last-synced ones) and the fallback."""
        emails = {self.fallback} if self.fallback else set()
        for plan in plans:
            if isinstance(plan, Create | Reconcile | Update) and plan.draft.assignee_email:
                emails.add(plan.draft.assignee_email)
            if isinstance(plan, Update) and plan.existing.draft and plan.existing.draft.get("assignee_email"):
                emails.add(str(plan.existing.draft["assignee_email"]))
        missing = emails - self._accounts.keys()
        if missing:
            self._accounts.update(self._lookup(missing))

    # ------------------------------------------------------------------------------------------------ by name

    def named(self, fields: Mapping[str, Any], draft: IssueDraft | None) -> dict[str, Any]:
        """A payload keyed by Jira field names (two fields sharing a name get their type added), values as people
        read them: option and project names, plain text for documents, the assignee's email."""
        names = {field_id: self._name(field_id) for field_id in fields}
        shared = {n for n in names.values() if list(names.values()).count(n) > 1}
        shown: dict[str, Any] = {}
        for field_id, value in fields.items():
            name = names[field_id]
            if name in shared:
                info = self._metadata()[1].get(field_id)
                name = f"{name} ({info.short_type or info.schema_type})" if info else f"{name} ({field_id})"
            shown[name] = self._value(field_id, value, draft)
        return shown

    def _name(self, field_id: str) -> str:
        info = self._metadata()[1].get(field_id)
        return info.name if info is not None else SYSTEM_NAMES.get(field_id, field_id)

    def _value(self, field_id: str, value: Any, draft: IssueDraft | None) -> Any:
        if field_id == "assignee" and draft is not None:
            return self._assignee_email(draft, value)
        if isinstance(value, dict):
            if value.get("type") == "doc":
                return adf.adf_to_text(value)
            for key in ("value", "name", "key", "accountId"):
                if key in value:
                    return value[key]
        return value

    def _assignee_email(self, draft: IssueDraft, value: Mapping[str, Any]) -> str:
        account = value.get("accountId")
        if draft.assignee_email and self._accounts.get(draft.assignee_email) == account:
            return draft.assignee_email
        return self.fallback or str(account)
