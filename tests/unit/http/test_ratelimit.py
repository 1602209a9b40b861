"""The run's rate-limit budget counts the time the run was held up, not the sum of its concurrent waits."""

from __future__ import annotations

import threading

from ml_connector.http import RateLimitBudget
from unit.clock import Clock


def test_waits_side_by_side_cost_the_budget_once() -> None:
    clock = Clock(100.0)
    budget = RateLimitBudget(10, clock=clock)
    assert all(budget.reserve(9) for _ in range(32))  # 32 calls held by one quota reset 9 s away
    assert budget.waited == 9


def test_a_wait_past_the_others_costs_only_the_part_they_do_not_cover() -> None:
    clock = Clock(100.0)
    budget = RateLimitBudget(10, clock=clock)
    assert budget.reserve(4)
    clock.now += 2
    assert budget.reserve(5)  # ends at 107, the first at 104: three more seconds
    assert budget.waited == 7
    assert budget.reserve(6)  # ends at 108: one more second
    clock.now += 10
    assert not budget.reserve(4)  # a new wait of 4 s after them all would make 12 > 10
    assert budget.waited == 8


def test_stop_gives_back_what_was_not_waited() -> None:
    clock = Clock(100.0)
    stop = threading.Event()
    budget = RateLimitBudget(30, stop=stop, clock=clock)
    assert budget.reserve(20)
    clock.now += 5
    stop.set()
    assert not budget.spend(20)
    assert budget.waited == 5
    assert not budget.reserve(1)  # a stopped run waits no more


def test_waits_one_after_another_fill_the_budget_exactly_at_a_late_clock() -> None:
    clock = Clock(9191.134329339)  # hours of uptime: ``now + 0.2 - now`` is no longer 0.2
    budget = RateLimitBudget(1.0, clock=clock)
    fitted = 0
    while budget.reserve(0.2):
        fitted += 1
        clock.now += 0.2 + 0.003  # the wait, then the call that got the next 429
    assert fitted == 5
