"""The simulator's issue record; the index keeps frozen copies of these for (possibly lagging) search."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StatusMove:
    """One status change of an issue, as ``status CHANGED`` searches it (the index copies keep these)."""

    when: datetime
    old: str | None  # status id
    new: str
    actor: str  # accountId


@dataclass
class Issue:
    id: int
    key: str
    project: str  # project key
    issuetype: str  # issue type id
    status: str  # status id
    created: datetime  # UTC, aware
    updated: datetime
    status_changed: datetime
    summary: str = ""
    description: Any = None  # ADF document or None
    priority: str | None = None  # priority id
    assignee: str | None = None  # accountId
    reporter: str | None = None
    labels: list[str] = field(default_factory=list)
    duedate: str | None = None
    resolution: str | None = None  # resolution id
    resolutiondate: datetime | None = None
    custom: dict[str, Any] = field(default_factory=dict)  # customfield id -> str (text) / option id (select)
    properties: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    old_keys: list[str] = field(default_factory=list)
    status_moves: tuple[StatusMove, ...] = ()  # immutable: a snapshot shares it safely

    @property
    def number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])

    def snapshot(self) -> Issue:
        """A copy for the search index: later edits of the live issue must not leak into it."""
        snap = copy.copy(self)
        snap.labels = list(self.labels)
        snap.custom = dict(self.custom)
        snap.properties = dict(self.properties)
        snap.history = []
        return snap
