"""PagePipeline: pages of work at once up to its depth, deeper (up to twice) while the pages behind the oldest are too
small to keep the far side busy once it finishes; errors raised in page order."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ml_connector.engine.pipeline import DEEPER, PagePipeline

WAIT_S = 5.0
BLOCKED_S = 0.2  # long enough for a submit that is not blocked to return


@dataclass(frozen=True)
class Rec:
    ifs_key: str


@dataclass
class Work:
    """Each page's work waits until the test lets that page finish; ``fail`` pages raise when they finish."""

    started: list[int] = field(default_factory=list)
    finish: dict[int, threading.Event] = field(default_factory=dict)
    fail: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, number: int, size: int) -> list[Any]:
        self.finish[number] = threading.Event()
        return [Rec(f"{number}-{i}") for i in range(size)]

    def apply(self, records: Sequence[Any]) -> None:
        number = int(records[0].ifs_key.split("-")[0])
        with self.lock:
            self.started.append(number)
        assert self.finish[number].wait(WAIT_S)
        if number in self.fail:
            raise RuntimeError(f"page {number} failed")


def submitted_in_background(pipeline: PagePipeline, page: list[Any]) -> threading.Thread:
    submit = threading.Thread(target=pipeline.submit, args=(page,), daemon=True)
    submit.start()
    submit.join(BLOCKED_S)
    return submit


def test_small_pages_go_deeper_than_the_depth_but_no_more_than_deeper_times() -> None:
    work = Work()
    with PagePipeline(work.apply, 2, fill=100) as pipeline:
        assert pipeline.most == DEEPER * 2
        for number in range(1, pipeline.most + 1):  # pages of 3: those behind the oldest carry fewer than 100
            pipeline.submit(work.page(number, 3))
        last = pipeline.most + 1
        late = submitted_in_background(pipeline, work.page(last, 3))
        assert late.is_alive()  # DEEPER times the depth at work: the next page waits
        work.finish[1].set()
        late.join(WAIT_S)
        assert not late.is_alive()
        for event in work.finish.values():
            event.set()
        pipeline.drain()
    assert sorted(work.started) == list(range(1, last + 1))


def test_pages_that_keep_the_far_side_busy_stay_at_the_depth() -> None:
    work = Work()
    with PagePipeline(work.apply, 2, fill=3) as pipeline:
        pipeline.submit(work.page(1, 3))
        pipeline.submit(work.page(2, 3))  # behind page 1: 3 records, enough
        third = submitted_in_background(pipeline, work.page(3, 3))
        assert third.is_alive()
        assert sorted(work.started) == [1, 2]
        work.finish[2].set()  # a later page finishing frees a place as well
        third.join(WAIT_S)
        assert not third.is_alive()
        for event in work.finish.values():
            event.set()
    assert sorted(work.started) == [1, 2, 3]


def test_an_earlier_pages_error_is_raised_by_a_later_submit_in_page_order() -> None:
    work = Work(fail={1})
    with pytest.raises(RuntimeError, match="page 1 failed"), PagePipeline(work.apply, 1, fill=0) as pipeline:
        pipeline.submit(work.page(1, 2))
        work.finish[1].set()
        pipeline.submit(work.page(2, 2))  # waits for page 1 (depth 1), then raises its error
    assert work.started == [1]


def test_depth_zero_applies_in_the_caller() -> None:
    work = Work()
    page = work.page(1, 2)
    work.finish[1].set()
    with PagePipeline(work.apply, 0, fill=100) as pipeline:
        pipeline.submit(page)
    assert work.started == [1]
