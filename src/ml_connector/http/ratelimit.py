"""Rate limits are back-pressure: a run waits out 429s within a long total budget, and a stop request cuts a wait short.

The engine opens one :class:`RateLimitBudget` per run with :func:`rate_limit_scope`; every ``ApiSession`` call made
in that run (in that thread, or in a worker given a copy of its context) waits against it. A call made outside any
run (``check``, a one-off command) gets a budget of its own, bounded by the session's ``max_retry_seconds``.

Jira's points quota (jira-api.md §9) speaks through headers on every charged answer; :func:`read_quota` turns them
into a :class:`QuotaReading` and ignores (and logs) any it cannot read: a malformed header never fails a call.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from ml_connector.http.classify import parse_retry_after

log = structlog.get_logger("ml_connector.http")


_ROUNDING = 1e-9  # seconds: float noise, never a real wait


class RateLimitBudget:
    """Seconds of 429 waiting allowed in total, the seconds used so far, and the stop event that ends a wait.

    ``waited`` is the time during which at least one of the run's calls was waiting (the union of the waits): 32
    concurrent calls held by one quota reset cost the run that reset's wait once, not 32 times.
    """

    def __init__(
        self,
        max_wait: float,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait = max_wait
        self.stop = stop if stop is not None else threading.Event()
        self._clock = clock
        self._waited = 0.0
        self._held_until = 0.0  # the clock time the latest wait reserved so far ends
        self._points = 0
        self._lock = threading.Lock()

    @property
    def points(self) -> int:
        """Quota points the run's calls used, as the quota headers tell (see ``QuotaGauge.observe``)."""
        with self._lock:
            return self._points

    def add_points(self, points: int) -> None:
        with self._lock:
            self._points += points

    @property
    def waited(self) -> float:
        with self._lock:
            return self._waited

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds``; False (at once, or when stop is set) if the budget cannot cover it or stop is set."""
        return self.reserve(seconds) and self.spend(seconds)

    def reserve(self, seconds: float) -> bool:
        """Set ``seconds`` aside for a wait; False when stop is set or the budget cannot cover them."""
        with self._lock:
            now = self._clock()
            seconds = max(0.0, seconds)
            end = now + seconds
            # Only what no wait already covers. Not ``end - now``: at a monotonic clock of hours, that difference
            # carries rounding error, and five waits of 0.2 s would no longer fit a budget of 1 s.
            added = seconds if self._held_until <= now else max(0.0, end - self._held_until)
            if self.stop.is_set() or self._waited + added > self.max_wait + _ROUNDING:
                return False
            self._waited += added  # up front, so concurrent waits cannot overdraw the budget
            self._held_until = max(self._held_until, end)
            return True

    def spend(self, seconds: float) -> bool:
        """Sleep the ``seconds`` reserved; False when stop cut the sleep short (the unspent part is given back)."""
        if not self.stop.wait(max(0.0, seconds)):
            return True
        with self._lock:  # stop ends every wait at once: nothing past now is spent
            now = self._clock()
            self._waited -= max(0.0, self._held_until - now)
            self._held_until = min(self._held_until, now)
        return False


_current: contextvars.ContextVar[RateLimitBudget | None] = contextvars.ContextVar("mlc_rate_limit", default=None)


def current_budget() -> RateLimitBudget | None:
    """The budget of the run this code is part of, if any."""
    return _current.get()


R = TypeVar("R")


def submit_in_scope(pool: Executor, call: Callable[..., R], *args: Any) -> Future[R]:
    """``pool.submit(call, ...)`` in a copy of the caller's context: the run's rate-limit budget (a context variable)
    applies on the pool's thread too."""
    return pool.submit(contextvars.copy_context().run, call, *args)


@contextmanager
def rate_limit_scope(budget: RateLimitBudget) -> Iterator[RateLimitBudget]:
    """Make ``budget`` the one every API call in this context waits against."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


# ------------------------------------------------------------------------------------------------ quota headers
_STRUCTURED = ("RateLimit", "Beta-RateLimit", "X-Beta-RateLimit")
_POLICIES = tuple(f"{name}-Policy" for name in _STRUCTURED)
_PARAM = re.compile(r"^\s*(\w+)\s*=\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class QuotaReading:
    """What one answer said about the points quota; None where it said nothing (or nothing readable)."""

    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None  # seconds until the window resets
    window: float | None = None  # the window's length in seconds (RateLimit-Policy ``w``)
    near_limit: bool = False
    exhausted: bool = False  # a quota 429 (RateLimit-Reason jira-quota-*)


def _ignored(header: str, value: str) -> None:
    log.info("http.quota_header_ignored", header=header, value=value[:120])


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return max(0, int(raw.strip()))
    except ValueError:
        _ignored(name, raw)
        return None


def structured_items(name: str, value: str) -> list[tuple[str, dict[str, float]]]:
    """A structured-field list (``"global-app-quota";q=65000;w=3600, ...``) as (name, numeric params); an item
    that does not parse is left out and logged, the rest are kept, in any order."""
    items: list[tuple[str, dict[str, float]]] = []
    for item in value.split(","):
        label, *raw_params = item.split(";")
        label = label.strip().strip('"')
        params: dict[str, float] = {}
        for raw in raw_params:
            match = _PARAM.match(raw)
            if match is None:
                _ignored(name, item)
                break
            params[match.group(1)] = float(match.group(2))
        else:
            if label:
                items.append((label, params))
                continue
            _ignored(name, item)
    return items


def _smallest(headers: Mapping[str, str], param: str, names: tuple[str, ...] = _STRUCTURED) -> float | None:
    """The smallest ``param`` over the items of the (Beta-)RateLimit headers (the pool that binds first)."""
    values = [
        params[param]
        for name in names
        if name in headers
        for _, params in structured_items(name, headers[name])
        if param in params
    ]
    return min(values) if values else None


def _reset_in(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until the quota resets: the smallest ``t`` of a (Beta-)RateLimit item, else X-RateLimit-Reset."""
    waits = _smallest(headers, "t")
    if waits is not None:
        return max(0.0, waits)
    raw = headers.get("X-RateLimit-Reset")
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    except ValueError:
        _ignored("X-RateLimit-Reset", raw)
        return None
    return max(0.0, (when - now).total_seconds())


def _window(headers: Mapping[str, str]) -> float | None:
    """The quota window's length (RateLimit-Policy ``w``); a window of no length or less is ignored and logged."""
    window = _smallest(headers, "w", _POLICIES)
    if window is not None and window <= 0:
        _ignored("RateLimit-Policy", f"w={window}")
        return None
    return window


def read_quota(headers: Mapping[str, str], status: int, *, now: datetime | None = None) -> QuotaReading | None:
    """The points-quota state in an answer's headers, or None when it carries none (Basic traffic, other limits).

    A 429 speaks for the quota only with a ``jira-quota-*`` reason (a burst 429 has X-RateLimit-* headers too)."""
    reason = headers.get("RateLimit-Reason", "")
    exhausted = status == 429 and reason.startswith("jira-quota")
    if status == 429 and not exhausted:
        return None
    if not exhausted and "X-RateLimit-Remaining" not in headers and not any(n in headers for n in _STRUCTURED):
        return None
    remaining = 0 if exhausted else _int_header(headers, "X-RateLimit-Remaining")
    if remaining is None and (r := _smallest(headers, "r")) is not None:
        remaining = max(0, int(r))  # ``r`` (near the limit only) when X-RateLimit-Remaining is missing
    reset_in = _reset_in(headers, now or datetime.now(UTC))
    if reset_in is None and exhausted:
        reset_in = parse_retry_after(headers.get("Retry-After"))  # the window's end, when nothing else says it
    return QuotaReading(
        limit=_int_header(headers, "X-RateLimit-Limit"),
        remaining=remaining,
        reset_in=reset_in,
        window=_window(headers),
        near_limit=headers.get("X-RateLimit-NearLimit", "").strip().lower() == "true",
        exhausted=exhausted,
    )
