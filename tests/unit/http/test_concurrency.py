"""The adaptive in-flight limit (AIMD) and the gate that holds callers to it."""

from __future__ import annotations

import random
import threading

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings, JiraHttpSettings
from ml_connector.errors import Unavailable
from ml_connector.http.concurrency import MIN_IN_FLIGHT, AimdLimit, ConcurrencyGate
from ml_connector.http.session import ApiSession
from unit.clock import Clock


def busy(limit: AimdLimit, latency: float, clock: Clock, answers: int) -> None:
    """``answers`` fast answers with the window full, one round trip of time between windows."""
    for _ in range(answers):
        limit.on_success(latency, limit.allowed)
        clock.now += latency / max(1, limit.allowed)


def test_grows_while_answers_are_fast() -> None:
    clock = Clock(0.0)
    limit = AimdLimit(initial=4, cap=64, clock=clock)
    busy(limit, 0.05, clock, 20)
    assert limit.allowed > 4


def test_slow_start_doubles_per_round_then_grows_by_about_one_per_round_after_a_throttle() -> None:
    clock = Clock(0.0)
    limit = AimdLimit(initial=4, cap=64, clock=clock)
    busy(limit, 0.05, clock, 4)  # one round trip of a full window of 4
    assert limit.allowed == 8
    limit.on_throttle()
    assert limit.allowed == 4
    clock.now += 1.0
    busy(limit, 0.05, clock, 4)  # one round trip after congestion: about one more
    assert limit.allowed == 4 or limit.allowed == 5
    assert limit.limit < 5.01


def test_halves_on_429() -> None:
    clock = Clock(0.0)
    limit = AimdLimit(initial=16, cap=64, clock=clock)
    limit.on_success(0.05, 16)
    limit.on_throttle()
    assert limit.allowed == 8


def test_one_decrease_per_round_trip() -> None:
    """The answers to calls sent before a cut carry the same news: a storm of 429s in one round trip cuts once."""
    clock = Clock(0.0)
    limit = AimdLimit(initial=16, cap=64, clock=clock)
    limit.on_success(0.1, 16)
    for _ in range(10):
        limit.on_throttle()
    assert limit.allowed == 8
    clock.now += 0.2
    limit.on_throttle()
    assert limit.allowed == 4


def test_never_below_the_floor_and_never_above_the_cap() -> None:
    clock = Clock(0.0)
    limit = AimdLimit(initial=100, cap=10, clock=clock)
    assert limit.allowed == 10
    busy(limit, 0.01, clock, 1000)
    assert limit.allowed == 10
    for _ in range(50):
        clock.now += 1.0
        limit.on_throttle()
    assert limit.allowed == MIN_IN_FLIGHT
    assert AimdLimit(initial=4, cap=1, clock=clock).allowed == 1  # a cap below the floor wins


def test_shrinks_on_rising_latency() -> None:
    clock = Clock(0.0)
    limit = AimdLimit(initial=8, cap=64, clock=clock)
    busy(limit, 0.05, clock, 40)
    grown = limit.limit
    for _ in range(2 * int(grown)):  # the far side starts to queue: for two round trips answers take 5 times as long
        limit.on_success(0.25, limit.allowed)
        clock.now += 0.05
    assert limit.limit < grown
    assert limit.state().smoothed_latency is not None


def test_does_not_grow_while_the_window_is_not_used() -> None:
    """A lone sequential caller builds up no window it could later spend in one burst."""
    clock = Clock(0.0)
    limit = AimdLimit(initial=4, cap=64, clock=clock)
    for _ in range(100):
        limit.on_success(0.05, 1)
    assert limit.allowed == 4


def test_gate_holds_callers_to_the_limit_and_records_the_high_water_mark() -> None:
    gate = ConcurrencyGate(AimdLimit(initial=2, cap=2))
    gate.acquire()
    gate.acquire()
    entered = threading.Event()

    def third() -> None:
        gate.acquire()
        entered.set()

    worker = threading.Thread(target=third)
    worker.start()
    assert not entered.wait(0.3)
    gate.release(latency=0.01)
    assert entered.wait(2)
    worker.join()
    assert gate.high_water == 2
    assert gate.in_flight == 2


def test_gate_throttle_lowers_the_limit_for_the_next_caller() -> None:
    gate = ConcurrencyGate(AimdLimit(initial=8, cap=8))
    with gate.slot() as slot:
        slot.throttled = True
    assert gate.limit.allowed == 4
    assert gate.in_flight == 0


def test_gate_wait_ends_on_stop_as_not_sent() -> None:
    gate = ConcurrencyGate(AimdLimit(initial=1, cap=1))
    gate.acquire()
    stop = threading.Event()
    stop.set()
    with pytest.raises(Unavailable) as caught:
        gate.acquire(stop)
    assert caught.value.not_sent


def test_an_endpoint_paced_to_a_documented_burst_starts_with_what_its_pacing_lets_out_at_once() -> None:
    """Jira endpoints start at the pacing bucket's size (capped by max_in_flight), not in slow start from 4: the
    pacer already holds them to the documented rate. Unpaced endpoints (IFS) start at initial_in_flight."""
    with httpx2.Client() as client:
        jira = ApiSession(client, system="jira", settings=JiraHttpSettings(max_in_flight=64))
        assert jira.gate("PUT", "/rest/api/3/issue/{id}").limit.allowed == 45  # 0.9 x PUT's 50/s
        assert jira.gate("POST", "/rest/api/3/issue/bulk").limit.allowed == 64  # 90, capped
        capped = ApiSession(client, system="jira", settings=JiraHttpSettings())
        assert capped.gate("PUT", "/rest/api/3/issue/{id}").limit.allowed == 32  # the default max_in_flight
        ifs = ApiSession(client, system="ifs", settings=HttpSettings())
        assert ifs.gate("GET", "/PurchaseOrderSet").limit.allowed == 4


def test_a_429_still_halves_an_endpoint_that_started_large() -> None:
    with httpx2.Client() as client:
        jira = ApiSession(client, system="jira", settings=JiraHttpSettings(max_in_flight=64))
        gate = jira.gate("PUT", "/rest/api/3/issue/{id}")
        gate.acquire()
        gate.release(throttled=True)
        assert gate.limit.allowed == 22


def jittery(limit: AimdLimit, clock: Clock, rng: random.Random, latencies: tuple[float, float], answers: int) -> None:
    """``answers`` answers with the window full, each taking a random latency between ``latencies``."""
    for _ in range(answers):
        latency = rng.uniform(*latencies)
        limit.on_success(latency, limit.allowed)
        clock.now += latency / limit.allowed


def test_latency_that_varies_without_a_queue_does_not_hold_the_limit_down() -> None:
    """Answers between 200 and 600 ms at random whatever the load (jitter, not a queue): the limit grows to its cap.
    Against the smoothed average (about 400 ms, twice the fastest) it was cut again and again, and stayed at 13."""
    clock = Clock(0.0)
    limit = AimdLimit(initial=4, cap=32, clock=clock)
    jittery(limit, clock, random.Random(7), (0.2, 0.6), 2000)
    assert limit.allowed == 32


def test_a_queue_that_slows_every_answer_still_cuts_the_limit_though_answers_vary() -> None:
    clock, rng = Clock(0.0), random.Random(7)
    limit = AimdLimit(initial=4, cap=64, clock=clock)
    jittery(limit, clock, rng, (0.05, 0.075), 400)
    grown = limit.allowed
    jittery(limit, clock, rng, (0.25, 0.375), 2 * grown)  # the far side queues: every answer takes 5x as long
    assert limit.allowed < grown
