"""The outbound planner: a page of IFS rows and the store's view of them in, one typed plan per record out.

Pure: no store, no HTTP, no clock. The caller reads the records, passes ``now`` and a mapping function (which it
builds only when :func:`rows_to_map` says some row needs mapping, so a run with nothing to map makes no lookups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ml_connector.engine.failures import is_systemic
from ml_connector.mapping import IssueDraft, canonical_json, stable_hash, text_hash
from ml_connector.store import ORPHANED, PARKED, RETRY, SYNCED, RecordRow

NOT_FOUND = "NotFound"  # error_class of a record whose issue answered 404, until that is confirmed or disproved

Row = Mapping[str, Any]
MapRow = Callable[[Row], IssueDraft]


@dataclass(frozen=True)
class PageRules:
    """What the plan of a page depends on besides its rows and records."""

    key_field: str
    fingerprint: str  # the flow's config: changing it means every issue must be mapped again
    now: datetime
    remap: bool = False  # ``--full``: map unchanged synced records too, so changed lookups reach Jira


@dataclass(frozen=True)
class _Planned:
    key: str  # the record's IFS key, as stored
    row: Row  # the IFS row this plan was made from
    source_hash: str
    # The row's text as ``source_hash`` encoded it, when plain (``canonical_json``): the audit takes it as it is.
    source_text: str | None = field(default=None, kw_only=True, repr=False)


@dataclass(frozen=True)
class Create(_Planned):
    """No issue and no create attempted: create one."""

    label: ClassVar[str] = "create"
    draft: IssueDraft
    existing: RecordRow | None = None


@dataclass(frozen=True)
class _Remapped(_Planned):
    draft: IssueDraft
    existing: RecordRow


@dataclass(frozen=True)
class Reconcile(_Remapped):
    """No issue linked but a create was attempted and not confirmed: it may exist in Jira, so the apply step searches
    for it before creating. A dry run cannot tell and names it a create."""

    label: ClassVar[str] = "create"


@dataclass(frozen=True)
class Update(_Remapped):
    """A linked issue whose content (or state) says it needs an edit."""

    label: ClassVar[str] = "update"


@dataclass(frozen=True)
class Skip(_Planned):
    """Nothing for Jira: settled before mapping (``draft`` None) or mapped to what the issue already holds."""

    label: ClassVar[str] = "skip"
    existing: RecordRow | None = None
    draft: IssueDraft | None = None


@dataclass(frozen=True)
class Fail(_Planned):
    """Mapping failed for this record (a template or value-map bug): the failure policy decides its state."""

    label: ClassVar[str] = "fail"
    error: Exception
    existing: RecordRow | None = None


Plan = Create | Reconcile | Update | Skip | Fail
Mapped = Create | Reconcile | Update


def source_hash(row: Row, fingerprint: str) -> str:
    """The record's content plus the flow's config: either changing means the issue must be mapped again."""
    return stable_hash(_source_value(row, fingerprint))


def _source_value(row: Row, fingerprint: str) -> dict[str, Any]:
    return {"config": fingerprint, "record": {k: v for k, v in row.items() if not k.startswith("@")}}


def _source_digest(row: Row, fingerprint: str, prefix: str) -> tuple[str, str | None]:
    """(``source_hash``, the text of the row's fields inside the text it digests when that is plain, else None).
    ``prefix``: what precedes the fields in that text (``_record_prefix``)."""
    text, plain = canonical_json(_source_value(row, fingerprint))
    digest = text_hash(text)
    if not plain or not text.startswith(prefix):
        return digest, None
    return digest, text[len(prefix) : -1]


def _record_prefix(fingerprint: str) -> str:
    """What precedes a row's fields in the text ``source_hash`` digests (keys sorted: "config" before "record")."""
    return '{"config": ' + canonical_json(fingerprint)[0] + ', "record": '


def row_key(row: Row, key_field: str) -> str:
    return str(row.get(key_field))


def has_create_intent(record: RecordRow) -> bool:
    """A create was attempted and never confirmed: the issue may exist (see ``apply.Applier.create``)."""
    return record.jira_id is None and record.create_attempted_at is not None


def awaiting_404_check(record: RecordRow) -> bool:
    """Its issue answered 404 and that is not yet confirmed or disproved (see ``reconcile.Reconciler.deleted``)."""
    return record.state == RETRY and record.error_class == NOT_FOUND and record.jira_id is not None


def settled(current: RecordRow, source_hash: str, now: datetime, *, remap: bool) -> bool:
    """Nothing to do for an unchanged record: synced (unless ``--full`` remaps), parked (until its source changes or
    it is replayed), waiting for its retry time (the work queue brings it back), or orphaned by policy."""
    if current.state == ORPHANED:
        return True
    if current.source_hash != source_hash:
        return False
    if current.state == PARKED:
        return True
    if current.state == RETRY:
        return current.next_attempt_at is not None and current.next_attempt_at > now
    return not remap and current.state == SYNCED


def rows_to_map(rows: Sequence[Row], existing: Mapping[str, RecordRow], rules: PageRules) -> list[Row]:
    """The rows :func:`plan_page` will map (so the caller knows which lines and lookups to read)."""
    return [row for row in rows if not _settled_row(row, existing, rules)]


def plan_page(rows: Sequence[Row], existing: Mapping[str, RecordRow], map_row: MapRow, rules: PageRules) -> list[Plan]:
    """One plan per distinct key, in first-seen order. Of rows sharing a key a mapped one wins over a settled one,
    else the last one wins.

    ``map_row`` is called only for rows that are not settled; a systemic error from it propagates (it stops the flow),
    any other fails that record only."""
    planned: dict[str, Plan] = {}
    to_map: list[tuple[str, Row, str, str | None]] = []
    prefix = _record_prefix(rules.fingerprint)  # once a page
    for row in rows:
        key, (digest, text) = row_key(row, rules.key_field), _source_digest(row, rules.fingerprint, prefix)
        current = existing.get(key)
        if current is not None and settled(current, digest, rules.now, remap=rules.remap):
            # Seen before, unchanged (the cursor's lookback overlap, an idle run): no mapping, no lookups.
            planned[key] = Skip(key, row, digest, existing=current)
        else:
            to_map.append((key, row, digest, text))
    for key, row, digest, text in to_map:
        planned[key] = _plan_mapped(key, row, digest, existing.get(key), map_row, text)
    order = dict.fromkeys(row_key(row, rules.key_field) for row in rows)
    return [planned[key] for key in order]


def _settled_row(row: Row, existing: Mapping[str, RecordRow], rules: PageRules) -> bool:
    current = existing.get(row_key(row, rules.key_field))
    # A new record is never settled: no hash needed (a backfill is all new records).
    return current is not None and settled(current, source_hash(row, rules.fingerprint), rules.now, remap=rules.remap)


def _plan_mapped(
    key: str, row: Row, digest: str, current: RecordRow | None, map_row: MapRow, text: str | None = None
) -> Plan:
    try:
        draft = map_row(row)
    except Exception as exc:  # a bug in a template or a value map fails this record, not the page
        if is_systemic(exc):
            raise
        return Fail(key, row, digest, exc, existing=current)
    if current is None:
        return Create(key, row, digest, draft, source_text=text)
    if current.jira_id is None:
        if has_create_intent(current):
            return Reconcile(key, row, digest, draft, current, source_text=text)
        return Create(key, row, digest, draft, existing=current, source_text=text)
    if current.state == ORPHANED or (current.draft_hash == draft.content_hash and current.state == SYNCED):
        return Skip(key, row, digest, existing=current, draft=draft)
    return Update(key, row, digest, draft, current, source_text=text)
