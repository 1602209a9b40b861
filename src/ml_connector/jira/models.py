"""Value types exchanged with the Jira client: drafts in, created issues and per-element outcomes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DraftIssue:
    """What the mapping layer produces for one issue.

    ``fields`` uses Jira field ids (``summary``, ``customfield_10050``) with Jira-shaped values; ``labels`` are
    merged into ``fields["labels"]``; ``properties`` become issue properties set atomically with the create.
    ``ref`` is the caller's own key (the IFS key) so outcomes can be matched back without relying on order.
    """

    fields: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    ref: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The ``IssueUpdateDetails`` body for create / bulk create / edit."""
        fields = dict(self.fields)
        if self.labels:
            existing = list(fields.get("labels") or [])
            fields["labels"] = existing + [label for label in self.labels if label not in existing]
        payload: dict[str, Any] = {"fields": fields}
        if self.properties:
            payload["properties"] = [{"key": k, "value": v} for k, v in self.properties.items()]
        return payload


@dataclass(frozen=True)
class CreatedIssue:
    id: str
    key: str
    self_url: str | None = None


@dataclass(frozen=True)
class JiraFailure:
    """Jira's reason for refusing one element: HTTP status plus its ``errorMessages``/``errors``.

    ``transient`` failures (429, 5xx) may succeed later; ``uncertain`` means the request may have been applied
    (a non-retryable error after the body was sent), so callers must reconcile before creating again.
    """

    status: int | None
    error_messages: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    transient: bool = False
    uncertain: bool = False

    @property
    def message(self) -> str:
        parts = list(self.error_messages) + [f"{k}: {v}" for k, v in self.errors.items()]
        return "; ".join(parts) or f"HTTP {self.status}"


@dataclass(frozen=True)
class CreateOutcome:
    """Per input draft: exactly one of ``issue`` or ``failure`` is set; ``index`` is the draft's input position."""

    index: int
    draft: DraftIssue
    issue: CreatedIssue | None = None
    failure: JiraFailure | None = None

    @property
    def ok(self) -> bool:
        return self.issue is not None


@dataclass(frozen=True)
class Transition:
    id: str
    name: str
    to_status: str
    to_status_id: str | None
    to_category: str | None
    fields: dict[str, Any]

    def required_fields(self) -> list[str]:
        return [
            fid
            for fid, meta in self.fields.items()
            if isinstance(meta, dict) and meta.get("required") and not meta.get("hasDefaultValue")
        ]


@dataclass(frozen=True)
class Webhook:
    id: int
    jql_filter: str | None
    events: tuple[str, ...]
    expiration: str | int | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
