"""What the outbound engine needs from the IFS source, the Jira sink and the store, as small protocols.

The real ``IfsClient``, ``JiraClient``, ``Store``/``Tx`` and ``Connector`` satisfy them structurally; a test can hand
in fakes (or a real SQLite store) and run planning, commit, apply and reconciliation without HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from ml_connector.config.models import FlowConfig
from ml_connector.errors import ConnectorError
from ml_connector.ifs.client import Filter, Page, Record
from ml_connector.ifs.odata import Key, KeyValue, OrderKey, Scalar
from ml_connector.jira.models import CreateOutcome, DraftIssue
from ml_connector.mapping import FieldTarget, MappingContext
from ml_connector.store import AuditEvent, RecordRow

Select = Sequence[str] | str | None
OrderBy = Sequence[str | OrderKey] | str | None


class IfsSource(Protocol):
    """The IFS reads of an outbound run: pages of the flow's entity set, their lines, records by key."""

    def iter_pages(
        self,
        entity_set: str,
        *,
        select: Select = None,
        filter: Filter = None,
        orderby: OrderBy = None,
        key_fields: Sequence[str] | None = None,
        page_size: int | None = None,
        first_page_size: int | None = None,
    ) -> Iterator[Page]: ...

    def key_fields(self, entity_set: str) -> tuple[str, ...]: ...

    def iter_records(
        self,
        entity_set: str,
        *,
        select: Select = None,
        filter: Filter = None,
        orderby: OrderBy = None,
        page_size: int | None = None,
    ) -> Iterator[Record]: ...

    def children_by_parent(
        self,
        entity_set: str,
        parent_field: str,
        parent_values: Iterable[Scalar],
        *,
        select: Select = None,
        orderby: OrderBy = None,
        page_size: int | None = None,
    ) -> dict[Any, list[Record]]: ...

    def get_many_by_keys(
        self, entity_set: str, keys: Sequence[Key], *, select: Select = None
    ) -> dict[tuple[KeyValue, ...], tuple[Record, str]]: ...


class JiraSink(Protocol):
    """The Jira calls of an outbound run: bulk create, edit, a read and the identity-label search."""

    def bulk_create(self, drafts: Sequence[DraftIssue], *, concurrency: int = 1) -> list[CreateOutcome]: ...

    def edit_issue(
        self, id_or_key: str, fields: Mapping[str, Any] | None = None, *, update: Mapping[str, Any] | None = None
    ) -> None: ...

    def get_issue(self, id_or_key: str, *, fields: Sequence[str] | None = None) -> dict[str, Any]: ...

    def search(
        self, jql: str, *, fields: Sequence[str] = ..., properties: Sequence[str] = ()
    ) -> Iterator[dict[str, Any]]: ...


class RecordAccess(Protocol):
    """The records repository as an outbound run uses it (``store.records`` or ``tx.records``)."""

    def get_many(self, flow: str, keys: Iterable[str]) -> dict[str, RecordRow]: ...

    def by_ids(self, ids: Sequence[int]) -> list[RecordRow]: ...

    def work_queue(self, flow: str, *, now: datetime | None = None, limit: int = 1000) -> list[RecordRow]: ...

    def count_by_state(self, flow: str | None = None) -> dict[str, int]: ...

    def insert(self, flow: str, ifs_key: str, **values: Any) -> RecordRow: ...

    def insert_many(self, flow: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, RecordRow]: ...

    def set_many(self, record_ids: Sequence[int], **values: Any) -> None: ...

    def update_many(self, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> None: ...

    def update(self, record_id: int, **values: Any) -> None: ...


class AuditAccess(Protocol):
    def add(self, record_id: int, event: AuditEvent) -> None: ...

    def add_many(self, rows: Sequence[tuple[int, AuditEvent]]) -> None: ...


class CursorAccess(Protocol):
    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str | None) -> None: ...


class RecordTx(Protocol):
    """One store transaction: what its repositories write commits or rolls back together."""

    @property
    def records(self) -> RecordAccess: ...

    @property
    def audit(self) -> AuditAccess: ...

    @property
    def cursors(self) -> CursorAccess: ...


class RecordStore(Protocol):
    """The store operations of an outbound run."""

    def transaction(self, run_id: int | None = None) -> AbstractContextManager[RecordTx]: ...

    @property
    def records(self) -> RecordAccess: ...

    @property
    def cursors(self) -> CursorAccess: ...


class Lookups(Protocol):
    """Shared lookups the connector caches across runs (users, Jira fields, the mapping context)."""

    def account_ids(self, emails: set[str]) -> dict[str, str | None]: ...

    def resolve_fields(self, flow: FlowConfig) -> dict[str, FieldTarget]: ...

    def mapping_context(self, flow: FlowConfig) -> MappingContext: ...


class JiraWiring(Lookups, Protocol):
    """What writing to Jira needs: the store, the (lazily built) Jira client and the shared lookups."""

    @property
    def store(self) -> RecordStore: ...

    @property
    def jira(self) -> JiraSink: ...

    def jira_metadata_read_at(self) -> datetime | None: ...

    def stale_metadata(
        self, error: BaseException, *, read_at: datetime | None, since: datetime
    ) -> ConnectorError | None: ...
