"""What the connector reads about the site: its own account, fields, projects, priorities and create screens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml_connector.jira.base import JiraBase, path_id
from ml_connector.jira.fields import FieldRegistry

READ = ("burst:read",)
# Page sizes asked for (project/search serves at most 100 a page, createmeta at most 200).
PROJECT_PAGE = 50
CREATEMETA_PAGE = 200


class MetadataOps(JiraBase):
    """Account and site metadata; the account and the field registry are cached per client."""

    _myself: dict[str, Any] | None = None
    _fields: FieldRegistry | None = None

    def myself(self, *, refresh: bool = False) -> dict[str, Any]:
        """The connector's own account (cached): ``accountId``, ``timeZone``..."""
        if self._myself is None or refresh:
            self._myself = self._json("GET", "myself", pace_keys=READ)
        return self._myself

    def time_zone(self) -> str:
        """The zone JQL datetimes are read in for this account."""
        return str(self.myself().get("timeZone") or "UTC")

    def server_info(self) -> dict[str, Any]:
        data: dict[str, Any] = self._json("GET", "serverInfo", pace_keys=READ)
        return data

    def fields(self, *, refresh: bool = False) -> FieldRegistry:
        """The field registry (one ``GET /field`` per client unless refreshed)."""
        with self._lock:
            if self._fields is None or refresh:
                self._fields = FieldRegistry(self._json("GET", "field", expect=list, pace_keys=READ))
            return self._fields

    def projects(self, keys: Sequence[str] = ()) -> list[dict[str, Any]]:
        params = {"keys": list(keys)} if keys else None
        return self._listing("project/search", page_size=PROJECT_PAGE, params=params, pace_keys=READ)

    def priorities(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json("GET", "priority", expect=list, pace_keys=READ)
        return data

    def create_issue_types(self, project: str) -> list[dict[str, Any]]:
        """Issue types creatable in ``project`` (createmeta, paged)."""
        path = f"issue/createmeta/{path_id(project)}/issuetypes"
        return self._listing(path, page_size=CREATEMETA_PAGE, key="issueTypes", pace_keys=READ)

    def create_fields(self, project: str, issue_type_id: str) -> list[dict[str, Any]]:
        """Fields (with ``required`` and ``allowedValues``) of the create screen for one project and issue type."""
        path = f"issue/createmeta/{path_id(project)}/issuetypes/{path_id(issue_type_id)}"
        return self._listing(path, page_size=CREATEMETA_PAGE, key="fields", pace_keys=READ)
