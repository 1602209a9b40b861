"""Workflow transitions: the ones available on an issue now, and moving an issue to a status by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml_connector.errors import MappingError, Rejected
from ml_connector.jira.base import SYSTEM, issue_write_keys, path_id
from ml_connector.jira.issues import ISSUE_READ, IssueOps
from ml_connector.jira.models import Transition
from ml_connector.reasons import TRANSITION_FIELDS


def _transition_of(item: Mapping[str, Any]) -> Transition:
    to = item.get("to") or {}
    return Transition(
        id=str(item["id"]),
        name=str(item.get("name") or ""),
        to_status=str(to.get("name") or ""),
        to_status_id=str(to["id"]) if to.get("id") is not None else None,
        to_category=(to.get("statusCategory") or {}).get("key"),
        fields=dict(item.get("fields") or {}),
    )


class TransitionOps(IssueOps):
    """Transitions need the issue's current status when no transition leads to the wanted one."""

    def transitions(self, id_or_key: str) -> list[Transition]:
        data = self._json(
            "GET",
            f"issue/{path_id(id_or_key)}/transitions",
            params={"expand": "transitions.fields"},
            pace_keys=ISSUE_READ,
        )
        return [_transition_of(item) for item in data.get("transitions") or []]

    def transition_to(
        self,
        id_or_key: str,
        status: str,
        *,
        fields: Mapping[str, Any] | None = None,
        update: Mapping[str, Any] | None = None,
    ) -> Transition | None:
        """Move the issue to the status named ``status``; None when it is already there.

        Transition ids differ per workflow, so the target is found by status name among the transitions available
        now. Fields the transition screen requires must be given in ``fields``; missing ones raise
        ``MappingError`` before any write.
        """
        transition = self._transition_towards(id_or_key, status)
        if transition is None:
            return None
        given = set(fields or {}) | set(update or {})
        missing = [f for f in transition.required_fields() if f not in given]
        if missing:
            raise MappingError(
                f"transition {transition.name!r} to {transition.to_status!r} requires fields: {', '.join(missing)}",
                field=missing[0],
                reason=TRANSITION_FIELDS,
                value=", ".join(missing),
            )
        body: dict[str, Any] = {"transition": {"id": transition.id}}
        if fields:
            body["fields"] = dict(fields)
        if update:
            body["update"] = dict(update)
        self._call(
            "POST",
            f"issue/{path_id(id_or_key)}/transitions",
            json=body,
            pace_keys=issue_write_keys("issue-transition", id_or_key),
        )
        return transition

    def _transition_towards(self, id_or_key: str, status: str) -> Transition | None:
        """The first transition available now that leads to ``status``; None when the issue is already there."""
        wanted = status.casefold()
        available = self.transitions(id_or_key)
        match = [t for t in available if t.to_status.casefold() == wanted]
        if match:
            return match[0]
        current = self.get_issue(id_or_key, fields=["status"]).get("fields", {}).get("status") or {}
        if str(current.get("name", "")).casefold() == wanted:
            return None
        names = ", ".join(sorted({t.to_status for t in available})) or "none"
        raise Rejected(
            f"issue {id_or_key} in status {current.get('name')!r} has no transition to {status!r} (reachable: {names})",
            system=SYSTEM,
            status=400,
        )
