"""The Jira client under the simulator's points quota over OAuth (jira-api.md §9): calls spend the quota, then wait
for the window's reset instead of meeting 429s; a pool other tenants spent costs one 429, then the same wait."""

from __future__ import annotations

from ml_connector.http import RateLimitBudget, rate_limit_scope
from ml_connector.jira import JiraClient

from .helpers import Sim, sim_json


def _quota_429s(sim: Sim) -> int:
    return sum(1 for r in sim.requests()["requests"] if r["status"] == 429)


def _an_issue(sim: Sim) -> str:
    made = sim_json(sim.control.post("/_sim/issues", json={"issues": [{"project": "PROC", "summary": "quota"}]}))
    return str(made["issues"][0]["key"])


def test_calls_wait_for_the_reset_instead_of_meeting_429s(sim: Sim, oauth_client: JiraClient) -> None:
    key = _an_issue(sim)
    sim.faults(quota_global_points=10, quota_window_seconds=2)
    budget = RateLimitBudget(30)
    with rate_limit_scope(budget):
        for _ in range(12):
            oauth_client.get_issue(key, fields=["status"])  # 2 points each: the request and the issue
    assert _quota_429s(sim) == 0
    assert budget.waited > 0
    charged = sim_json(sim.control.get("/_sim/quota"))["charged_total"]
    assert charged == 24 and abs(budget.points - charged) <= 2  # the first answer's window began before us


def test_a_pool_other_tenants_spent_costs_one_429(sim: Sim, oauth_client: JiraClient) -> None:
    key = _an_issue(sim)
    sim.faults(quota_global_points=10, quota_window_seconds=2)
    sim_json(sim.control.put("/_sim/quota", json={"spend_global": 10}))
    with rate_limit_scope(RateLimitBudget(30)):
        for _ in range(6):
            oauth_client.get_issue(key, fields=["status"])
    assert _quota_429s(sim) == 1
