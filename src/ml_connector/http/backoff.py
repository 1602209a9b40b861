"""The one exponential backoff window, shared by in-call retries (``ApiSession``) and record retries (the engine)."""

from __future__ import annotations


def backoff_window(attempt: int, initial: float, maximum: float) -> float:
    """The ceiling of the wait after the ``attempt``-th failure (1-based): ``min(maximum, initial * 2**(attempt-1))``.

    Callers draw full jitter, ``uniform(0, window)``; a 429 without ``Retry-After`` waits at least half of it."""
    return float(min(maximum, initial * 2 ** (max(attempt, 1) - 1)))
