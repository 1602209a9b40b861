"""Rate limits: token buckets per endpoint (burst) and per issue (writes), answered with Jira's 429 headers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ml_connector.sim.jira.common import ApiError, num
from ml_connector.sim.jira.model import Issue
from ml_connector.sim.jira.options import Faults


@dataclass
class Bucket:
    capacity: float
    tokens: float
    stamp: float


class RateLimits:
    """Reads the current faults on every check, so a fault change applies to the next request."""

    def __init__(self, faults: Callable[[], Faults]) -> None:
        self.faults = faults
        self.buckets: dict[str, Bucket] = {}

    def _take(self, key: str, rate: float) -> bool:
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(rate, rate, now)
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
        rate = self.faults().burst_per_second
        if rate is not None and not self._take("burst:" + endpoint, rate):
            raise self.rate_limited("jira-burst-based", rate)

    def check_issue_write(self, issue: Issue) -> None:
        rate = self.faults().per_issue_writes_per_second
        if rate is not None and not self._take(f"issue:{issue.id}", rate):
            raise self.rate_limited("jira-per-issue-on-write", rate)
