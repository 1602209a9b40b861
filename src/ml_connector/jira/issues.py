"""One issue at a time: create, read, edit, delete, and its entity properties (where the IFS link is kept)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ml_connector.errors import NotFound
from ml_connector.jira.base import API, SYSTEM, JiraBase, issue_write_keys, path_id
from ml_connector.jira.models import CreatedIssue, DraftIssue

ISSUE_READ = ("burst:issue-read",)


class IssueOps(JiraBase):
    """Single-issue operations and issue properties."""

    def create_issue(self, draft: DraftIssue) -> CreatedIssue:
        data = self._json(
            "POST", "issue", require=("id", "key"), json=draft.to_payload(), pace_keys=("burst:issue-create",)
        )
        return CreatedIssue(id=str(data["id"]), key=str(data["key"]), self_url=data.get("self"))

    def edit_issue(
        self,
        id_or_key: str,
        fields: Mapping[str, Any] | None = None,
        *,
        update: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        notify_users: bool = True,
    ) -> None:
        """``PUT /issue/{id}``; status changes are ignored by Jira here (use :meth:`transition_to`)."""
        body: dict[str, Any] = {}
        if fields:
            body["fields"] = dict(fields)
        if update:
            body["update"] = dict(update)
        if properties:
            body["properties"] = [{"key": k, "value": v} for k, v in properties.items()]
        params = None if notify_users else {"notifyUsers": "false"}
        self._call(
            "PUT",
            f"issue/{path_id(id_or_key)}",
            params=params,
            json=body,
            pace_keys=issue_write_keys("issue-write", id_or_key),
        )

    def get_issue(
        self,
        id_or_key: str,
        *,
        fields: Sequence[str] | None = None,
        properties: Sequence[str] = (),
        expand: Sequence[str] = (),
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if fields is not None:
            params["fields"] = ",".join(fields)
        if properties:
            params["properties"] = ",".join(properties)
        if expand:
            params["expand"] = ",".join(expand)
        data: dict[str, Any] = self._json(
            "GET", f"issue/{path_id(id_or_key)}", params=params or None, pace_keys=ISSUE_READ
        )
        return data

    def delete_issue(self, id_or_key: str) -> None:
        self._call("DELETE", f"issue/{path_id(id_or_key)}", pace_keys=issue_write_keys("issue-write", id_or_key))

    def set_property(self, id_or_key: str, key: str, value: Any) -> None:
        self._call(
            "PUT",
            f"issue/{path_id(id_or_key)}/properties/{path_id(key)}",
            json=value,
            pace_keys=issue_write_keys("issue-write", id_or_key),
        )

    def get_property(self, id_or_key: str, key: str) -> Any:
        """The property value, or None when the issue has no such property."""
        response, body = self.session.request_json(
            "GET",
            f"{API}/issue/{path_id(id_or_key)}/properties/{path_id(key)}",
            pace_keys=ISSUE_READ,
            allow_status=(404,),
        )
        if response.status_code == 404:
            raw = body.get("errorMessages")
            messages = " ".join(str(m) for m in raw) if isinstance(raw, list) else ""
            if "issue" in messages.lower() and "property" not in messages.lower():
                raise NotFound(f"issue {id_or_key} not found: {messages}", system=SYSTEM, status=404)
            return None
        return body.get("value")

    def property_keys(self, id_or_key: str) -> list[str]:
        data = self._json("GET", f"issue/{path_id(id_or_key)}/properties", pace_keys=ISSUE_READ)
        return [str(k["key"]) for k in data.get("keys") or []]

    def delete_property(self, id_or_key: str, key: str) -> None:
        self._call(
            "DELETE",
            f"issue/{path_id(id_or_key)}/properties/{path_id(key)}",
            pace_keys=issue_write_keys("issue-write", id_or_key),
            allow_status=(404,),
        )
