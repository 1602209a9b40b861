"""The one failure policy (DESIGN §4.3): the error's class alone decides what happens to a record.

* ``RateLimited``: deferred. Back-pressure, not a failure: the record waits ``retry_after`` (or the initial backoff)
  and no attempt is used up.
* ``TransientError`` and ``ConcurrencyConflict`` (still conflicting after the in-call re-reads): retry on a later
  run, exponential backoff with full jitter, parked once ``max_attempts`` are used.
* ``PermanentError`` (400 field errors, 404 on an IFS write, ...), ``MappingError`` and ``AuthError`` with status 403
  (one record's write refused for want of permission): parked at once.
* Systemic errors (credentials refused, a config error, the store unreachable) are no record's fault: ``decide``
  re-raises them so that they stop the flow, whatever the call site catches.
* Anything else (a bug, a parser error): retried like a transient error, then parked, as ``InternalError``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from ml_connector.config.models import SyncPolicy
from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    ConfigError,
    ConnectorError,
    MappingError,
    PermanentError,
    RateLimited,
    Rejected,
    Unavailable,
)
from ml_connector.http.backoff import backoff_window
from ml_connector.http.redact import redact
from ml_connector.jira.models import JiraFailure
from ml_connector.logging import known_secrets
from ml_connector.reasons import OTHER, Reason, reason_of
from ml_connector.store import PARKED, RETRY

INTERNAL_ERROR = "InternalError"
_MAX_MESSAGE = 1000
_CONTROL = {c: " " for c in [*range(32), 127]}

# Outcomes, also the RunReport counter each one adds to.
FAILED = "failed"  # will be retried later
DEFERRED = "deferred"  # waiting (rate limit); no attempt used
PARKED_OUTCOME = "parked"  # in the failed queue until its source changes or it is replayed


@dataclass(frozen=True)
class FailureDecision:
    """What to store for a record after ``error``; ``state`` is ``retry`` or ``parked``."""

    state: str
    attempts: int
    next_attempt_at: datetime | None
    error_class: str
    message: str  # redacted; for ``last_error`` and the audit trail
    backoff_seconds: float | None = None  # the wait before ``next_attempt_at``
    deferred: bool = False
    reason: Reason = field(
        default_factory=lambda: Reason(OTHER)
    )  # for grouped summaries, ``status``, the failed queue and metrics

    @property
    def outcome(self) -> str:
        if self.state == PARKED:
            return PARKED_OUTCOME
        return DEFERRED if self.deferred else FAILED

    @property
    def reason_columns(self) -> dict[str, str | None]:
        """The record columns that store ``reason``."""
        return {"reason": self.reason.code, "reason_value": self.reason.value}

    def audit_detail(self) -> dict[str, Any]:
        return {
            "error_class": self.error_class,
            "reason": self.reason.code,
            "attempt": self.attempts,
            "outcome": self.outcome,
            "backoff_seconds": self.backoff_seconds,
            "next_attempt_at": self.next_attempt_at,
        }


def is_systemic(error: BaseException) -> bool:
    """Errors that no single record caused: they stop the flow (never the other flows)."""
    if isinstance(error, AuthError):
        return error.status != 403
    return isinstance(error, ConfigError | OperationalError | InterfaceError)


def error_class(error: BaseException) -> str:
    return type(error).__name__ if isinstance(error, ConnectorError) else INTERNAL_ERROR


def describe(error: BaseException) -> str:
    """A redacted one-line message; an unexpected exception is named by its type."""
    text = str(error) if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.translate(_CONTROL).split())  # one line, no NUL (PostgreSQL text refuses it)
    cleaned: str = redact(text, secrets=known_secrets())
    return cleaned[:_MAX_MESSAGE]


def create_failure_error(failure: JiraFailure) -> ConnectorError:
    """One bulk-create element's failure as the error class the policy keys on."""
    status = failure.status
    if failure.uncertain or status is None:
        return Unavailable(f"create unconfirmed: {failure.message}", system="jira", status=status)
    message = f"Jira refused the create: {failure.message}"
    if status == 429:
        return RateLimited(message, system="jira")
    if status >= 500:
        return Unavailable(message, system="jira", status=status)
    if status == 403:
        return AuthError(message, system="jira", status=status)
    return Rejected(message, system="jira", status=status, details={"errors": failure.errors})


def backoff_ceiling(attempt: int, policy: SyncPolicy) -> float:
    """The full-jitter window after a record's ``attempt``-th failure (1-based)."""
    return backoff_window(attempt, policy.retry_initial, policy.retry_max)


def decide(
    error: BaseException,
    *,
    attempts_so_far: int,
    policy: SyncPolicy,
    now: datetime,
    rng: random.Random | None = None,
) -> FailureDecision:
    """Decide a record's fate from the class of ``error`` alone; re-raises systemic errors."""
    if is_systemic(error):
        raise error
    name, message, reason = error_class(error), describe(error), reason_of(error)
    if isinstance(error, RateLimited):
        # The in-call budget is spent by now: a Retry-After of 0 says nothing useful, so wait retry_initial then.
        wait = min(float(error.retry_after or policy.retry_initial), policy.retry_max)
        return FailureDecision(
            RETRY,
            attempts_so_far,
            now + timedelta(seconds=wait),
            name,
            message,
            backoff_seconds=wait,
            deferred=True,
            reason=reason,
        )
    attempts = attempts_so_far + 1
    permanent = isinstance(error, PermanentError | MappingError | AuthError) and not isinstance(
        error, ConcurrencyConflict
    )
    if permanent:
        return FailureDecision(PARKED, attempts, None, name, message, reason=reason)
    if attempts >= policy.max_attempts:
        return FailureDecision(
            PARKED, attempts, None, name, f"gave up after {attempts} attempts: {message}", reason=reason
        )
    delay = (rng or random).uniform(0.0, backoff_ceiling(attempts, policy))  # full jitter
    return FailureDecision(
        RETRY, attempts, now + timedelta(seconds=delay), name, message, backoff_seconds=delay, reason=reason
    )
