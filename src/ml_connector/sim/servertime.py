"""Modelled server time: how long the far side works on a request, by operation and size, on top of network latency.

Both simulators look their operations up in ``PROFILES`` when the ``server_time_profile`` fault names a profile, and
``await asyncio.sleep`` for the answer, so other requests keep being served meanwhile. No jitter: the same work
always takes the same time, so benchmark runs are repeatable. The bench's lower bounds read the same table.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

ServerTimeProfile = Literal["realistic"]
Operation = Literal["jira.bulk_create", "jira.edit", "jira.search", "ifs.read"]


@dataclass(frozen=True)
class Cost:
    """Seconds for one call: ``base`` plus ``per_item`` for each item the call carries or returns."""

    base: float
    per_item: float = 0.0

    def seconds(self, items: int = 0) -> float:
        return self.base + self.per_item * max(0, items)


# Observed orders of magnitude on real tenants (issue 14): Jira bulk create 1-2 s per call of 50 issues, an issue edit
# ~300 ms, a JQL search page ~400 ms; an IFS page of 1,000 rows ~0.8 s. Operations not listed cost no server time.
PROFILES: dict[ServerTimeProfile, dict[Operation, Cost]] = {
    "realistic": {
        "jira.bulk_create": Cost(0.25, 0.025),  # per issue in the call: 50 issues -> 1.5 s
        "jira.edit": Cost(0.3),  # PUT /issue/{id}
        "jira.search": Cost(0.4),  # one page of GET or POST /search/jql
        "ifs.read": Cost(0.05, 0.00075),  # per row returned: 1,000 rows -> 0.8 s; a single entity is one row
    },
}


def server_seconds(profile: ServerTimeProfile | None, operation: Operation, items: int = 0) -> float:
    """The modelled server time of one call (0 without a profile or for an operation the profile does not list)."""
    if profile is None:
        return 0.0
    cost = PROFILES[profile].get(operation)
    return cost.seconds(items) if cost is not None else 0.0


async def work(profile: ServerTimeProfile | None, operation: Operation, items: int = 0) -> None:
    """Spend the modelled server time without holding the event loop."""
    seconds = server_seconds(profile, operation, items)
    if seconds > 0:
        await asyncio.sleep(seconds)
