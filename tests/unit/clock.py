"""A clock the test moves by hand: a callable returning seconds, like ``time.monotonic``."""

from __future__ import annotations


class Clock:
    """Moves only when the test moves it (``now``) or when the code under test sleeps on it (``sleep``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
