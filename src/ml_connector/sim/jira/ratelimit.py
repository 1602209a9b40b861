"""Rate limits: token buckets per endpoint (burst) and per issue (writes), and the hourly points quota of OAuth apps,
answered with Jira's rate-limit headers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ml_connector.sim.jira.common import ApiError, num
from ml_connector.sim.jira.model import Issue
from ml_connector.sim.jira.options import DOCUMENTED_BURST, Faults

BUCKET_SECONDS = 1.0  # a bucket holds this many seconds of its rate and starts full ("token bucket, per second")


@dataclass
class Bucket:
    capacity: float
    tokens: float
    stamp: float


class RateLimits:
    """Reads the current faults on every check, so a fault change applies to the next request."""

    def __init__(self, faults: Callable[[], Faults], clock: Callable[[], float] = time.monotonic) -> None:
        self.faults = faults
        self.clock = clock  # seconds, monotonic; tests pass a fake one
        self.buckets: dict[str, Bucket] = {}

    def _take(self, key: str, rate: float) -> bool:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(rate * BUCKET_SECONDS, rate * BUCKET_SECONDS, now)
        bucket.tokens = min(bucket.capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def rate_limited(self, reason: str, limit: float) -> ApiError:
        retry = self.faults().retry_after_seconds
        wait = 1.0 if retry is None else retry
        reset = (datetime.now(UTC) + timedelta(seconds=wait)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        headers = {
            "RateLimit-Reason": reason,
            "X-RateLimit-Limit": num(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
        if retry is not None:
            headers["Retry-After"] = num(retry)
        return ApiError(429, ["Rate limit exceeded."], headers=headers)

    def check_burst(self, endpoint: str) -> None:
        """``endpoint`` is "METHOD /path/template": each has its own bucket, at its method's rate."""
        rate = burst_rate(self.faults().burst_per_second, endpoint.split(" ", 1)[0])
        if rate is not None and not self._take("burst:" + endpoint, rate):
            raise self.rate_limited("jira-burst-based", rate)

    def check_issue_write(self, issue: Issue) -> None:
        rate = self.faults().per_issue_writes_per_second
        if rate is not None and not self._take(f"issue:{issue.id}", rate):
            raise self.rate_limited("jira-per-issue-on-write", rate)


def burst_rate(setting: float | dict[str, float] | str | None, method: str) -> float | None:
    """The burst rate of one method under the ``burst_per_second`` fault: None (off), one number for every method, a
    method -> rate mapping (a method not in it is not limited), or "documented" (``DOCUMENTED_BURST``)."""
    if setting is None or isinstance(setting, int | float):
        return setting
    table = DOCUMENTED_BURST if setting == "documented" else setting
    return table.get(method.upper()) if isinstance(table, dict) else None


# ------------------------------------------------------------------------------------------------ points quota
# jira-api.md §9: OAuth (3LO) traffic pays points per hour from the app's global pool (shared by every tenant) or a
# per-tenant pool; API-token (Basic) traffic pays nothing. Reads pay 1 + 1 per core object + 2 per identity object.
_NEAR_LIMIT = 0.2
_POOL_NAMES = {"global": "global-app-quota", "tenant": "tenant-app-quota"}
_READ_POSTS = ("/search", "/bulkfetch", "/search/jql", "/search/approximate-count")


def points_cost(method: str, template: str, status: int, body: Any) -> int:
    """What one answered request costs: writes and errors the base point, reads 1 + the objects they return."""
    is_read = method == "GET" or (method == "POST" and template.endswith(_READ_POSTS))
    if not is_read or status >= 400:
        return 1
    identity = "/user" in template or template.endswith(("/myself", "/groups"))
    per_object = 2 if identity else 1
    if isinstance(body, list):
        return 1 + per_object * len(body)
    if isinstance(body, dict):
        for key in ("issues", "values", "users"):
            items = body.get(key)
            if isinstance(items, list):
                return 1 + per_object * len(items)
        return 1 + per_object if "key" in body or "accountId" in body else 1
    return 1


@dataclass
class Pool:
    name: str  # "global" | "tenant"
    size: int
    used: int = 0


class PointsQuota:
    """The hourly points pools on the simulator's clock; ``window_seconds`` shrinks the "hour" for tests."""

    def __init__(self, faults: Callable[[], Faults], now: Callable[[], datetime]) -> None:
        self.faults = faults
        self.now = now
        self.window_start = 0.0
        self.used = {"global": 0, "tenant": 0}
        self.charged_total = 0  # every point charged since the last reset, across windows (for tests)

    def _roll(self) -> tuple[float, float]:
        """(seconds until the window resets, window length); a new window empties the pools."""
        window = self.faults().quota_window_seconds
        now = self.now().timestamp()
        start = now - now % window
        if start != self.window_start:
            self.window_start = start
            self.used = {"global": 0, "tenant": 0}
        return start + window - now, window

    def pools(self) -> list[Pool]:
        faults = self.faults()
        sizes = {"global": faults.quota_global_points, "tenant": faults.quota_tenant_points}
        return [Pool(name, size, self.used[name]) for name, size in sizes.items() if size is not None]

    def admit(self) -> None:
        """Raise the quota 429 when a pool is spent (the tenant pool's reason wins when both are)."""
        left, window = self._roll()
        spent = [p for p in self.pools() if p.used >= p.size]
        if not spent:
            return
        pool = next((p for p in spent if p.name == "tenant"), spent[0])
        reset = (self.now() + timedelta(seconds=left)).astimezone(UTC)
        headers = self.headers(left, window) | {
            "RateLimit-Reason": f"jira-quota-{pool.name}-based",
            "Retry-After": str(math.ceil(left)),
            "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        raise ApiError(429, ["Rate limit exceeded."], headers=headers)

    def charge(self, cost: int) -> dict[str, str]:
        """Take ``cost`` points from every pool; the headers the answer carries."""
        left, window = self._roll()
        for pool in self.pools():
            self.used[pool.name] = min(pool.size, pool.used + cost)
        self.charged_total += cost
        return self.headers(left, window)

    def headers(self, left: float, window: float) -> dict[str, str]:
        pools = self.pools()
        if not pools:
            return {}
        tightest = min(pools, key=lambda p: p.size - p.used)
        remaining = max(0, tightest.size - tightest.used)
        near = remaining < _NEAR_LIMIT * tightest.size
        prefix = "Beta-" if self.faults().quota_beta_headers else ""
        policy = ", ".join(f'"{_POOL_NAMES[p.name]}";q={p.size};w={num(window)}' for p in pools)
        state = ", ".join(
            f'"{_POOL_NAMES[p.name]}";' + (f"r={max(0, p.size - p.used)};" if near else "") + f"t={math.ceil(left)}"
            for p in pools
        )
        headers = {
            "X-RateLimit-Limit": str(tightest.size),
            "X-RateLimit-Remaining": str(remaining),
            f"{prefix}RateLimit-Policy": policy,
            f"{prefix}RateLimit": state,
        }
        if near:
            headers["X-RateLimit-NearLimit"] = "true"
        return headers

    def spend_elsewhere(self, points: int) -> None:
        """Other tenants' traffic on the app's global pool (a control operation)."""
        self._roll()
        self.used["global"] += max(0, points)

    def state(self) -> dict[str, Any]:
        left, window = self._roll()
        return {
            "window_seconds": window,
            "resets_in": left,
            "pools": [{"name": p.name, "size": p.size, "used": p.used} for p in self.pools()],
            "charged_total": self.charged_total,
        }
