"""Failure policy (DESIGN §4.3): which errors retry, when, and when a record is parked."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from ml_connector.config.models import SyncPolicy
from ml_connector.errors import ConnectorError, MappingError, PermanentError, TransientError
from ml_connector.store import PARKED, RETRY


@dataclass(frozen=True)
class FailureDecision:
    state: str  # retry | parked
    attempts: int
    next_attempt_at: datetime | None
    error_class: str
    message: str


def decide(
    error: ConnectorError | str,
    *,
    transient: bool,
    attempts_so_far: int,
    policy: SyncPolicy,
    now: datetime,
    rng: random.Random | None = None,
) -> FailureDecision:
    """Transient failures retry with exponential backoff (full jitter) until ``max_attempts``; others park."""
    attempts = attempts_so_far + 1
    error_class = type(error).__name__ if isinstance(error, ConnectorError) else "Rejected"
    message = str(error)
    if transient and attempts < policy.max_attempts:
        ceiling = min(policy.retry_max, policy.retry_initial * (2 ** (attempts - 1)))
        delay = (rng or random).uniform(ceiling / 2, ceiling)  # half jitter keeps a minimum spacing
        return FailureDecision(RETRY, attempts, now + timedelta(seconds=delay), error_class, message)
    if transient:
        message = f"gave up after {attempts} attempts: {message}"
    return FailureDecision(PARKED, attempts, None, error_class, message)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TransientError):
        return True
    if isinstance(error, PermanentError | MappingError):
        return False
    return False
