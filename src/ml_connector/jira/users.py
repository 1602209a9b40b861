"""User resolver: email → accountId, cached; "not found" and "ambiguous" are outcomes, not errors.

Jira Cloud has no lookup by email. ``/user/search?query=`` prefix-matches display names and emails, and hides the
email of users who chose so: such users are found only by an exact email query and come back without
``emailAddress``. So a result counts only when its email equals the query, or when the email is hidden and it is
the single result of that exact query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ml_connector.jira.base import JiraBase

USER_SEARCH_PAGE = 50  # the most /user/search returns per call

UserStatus = Literal["found", "not_found", "ambiguous"]


@dataclass(frozen=True)
class UserResolution:
    email: str
    status: UserStatus
    account_id: str | None = None
    display_name: str | None = None
    candidates: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.status == "found"


def choose_user(email: str, users: Sequence[Mapping[str, Any]]) -> UserResolution:
    """Pure selection rule over a ``/user/search`` result."""
    wanted = email.strip().casefold()
    people = [u for u in users if u.get("accountId") and u.get("accountType", "atlassian") == "atlassian"]
    active = [u for u in people if u.get("active", True)]
    exact = [u for u in active if str(u.get("emailAddress") or "").casefold() == wanted]
    if not exact:
        hidden = [u for u in active if not u.get("emailAddress")]
        if len(hidden) == 1 and len(active) == 1:
            exact = hidden
    if len(exact) == 1:
        user = exact[0]
        return UserResolution(email, "found", str(user["accountId"]), user.get("displayName"))
    if len(exact) > 1:
        return UserResolution(email, "ambiguous", candidates=tuple(str(u["accountId"]) for u in exact))
    return UserResolution(email, "not_found")


class UserResolver:
    """Caches resolutions (including misses) for ``ttl`` seconds so a run costs one search per distinct email."""

    def __init__(
        self,
        search: Callable[[str], Sequence[Mapping[str, Any]]],
        *,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._search = search
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, UserResolution]] = {}
        self._lock = threading.Lock()

    def resolve(self, email: str) -> UserResolution:
        key = email.strip().casefold()
        if not key:
            return UserResolution(email, "not_found")
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        result = choose_user(email.strip(), self._search(email.strip()))
        with self._lock:
            self._cache[key] = (now + self._ttl, result)
        return result


class UserOps(JiraBase):
    """``/user/search``, which the client's :class:`UserResolver` calls."""

    def search_users(self, query: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json(
            "GET",
            "user/search",
            expect=list,
            params={"query": query, "maxResults": USER_SEARCH_PAGE},
            pace_keys=("burst:user-search",),
        )
        return data
