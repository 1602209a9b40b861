"""The one error hierarchy of the connector.

Retry and failed-queue decisions key off the class, never the message:

* ``TransientError`` (``RateLimited``, ``Unavailable`` and its ``MalformedResponse``): retried inside the call, then
  on later runs. A ``RateLimited`` is back-pressure: it is waited out (bounded per run), never a record's failure.
* ``PermanentError`` (``Rejected``) and ``MappingError``: parked at once with the reason.
* ``ConcurrencyConflict`` (a stale ETag) is a ``PermanentError`` for the request, not for the record: the record is
  retried with backoff like a transient failure (``engine/failures.decide``), since a fresh read usually succeeds.
* ``AuthError`` and ``ConfigError``: stop the run; nothing a retry can fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose; ``status`` is the HTTP status behind it, if any."""

    def __init__(self, message: str, *, system: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status

    def __str__(self) -> str:
        return f"{self.system}: {self.message}" if self.system else self.message


class ConfigError(ConnectorError):
    """Invalid configuration; ``path`` is the dotted YAML path of the offending value."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class AuthError(ConnectorError):
    """Credentials refused (after one refresh) or missing permission."""


class TransientError(ConnectorError):
    """Worth retrying: the same request may succeed later."""


class RateLimited(TransientError):
    """429: ``retry_after`` seconds is the minimum wait the server asked for (None when it gave none)."""

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, system=system, status=429)
        self.retry_after = retry_after
        self.reason = reason


class Unavailable(TransientError):
    """5xx, timeouts, dropped connections; ``retry_after`` when the server sent one.

    ``not_sent`` is True only when the request provably never reached the server (a connection that was never
    established), so even a create may be sent again; otherwise the server may have acted on it.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        not_sent: bool = False,
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.retry_after = retry_after
        self.not_sent = not_sent


class MalformedResponse(Unavailable):
    """An answer that is not what the API promises: HTML (a proxy's login or maintenance page) or another content
    type where JSON was promised, an empty, cut-off or invalid JSON body, or JSON of the wrong shape.

    Retriable (a proxy page or a cut body is usually passing), but ambiguous: the server may have acted on the
    request before the answer was spoiled, so a create that got one is reconciled, never resent blindly.
    """


class StaleMetadata(TransientError):
    """Jira refused a write over a field while the metadata it was built from (field ids, options, priorities,
    projects) predates the run: that metadata was dropped, and the write is retried with what Jira says now."""


class PermanentError(ConnectorError):
    """Retrying the same request cannot succeed."""

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        status: int | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.code = code
        self.details = dict(details or {})


class Rejected(PermanentError):
    """The far side refused the request (400, 403, 404, 409, 410, 422, ...)."""


class NotFound(Rejected):
    """404: the entity or issue does not exist (or is not visible to us)."""


class ConcurrencyConflict(PermanentError):
    """412: the ETag we sent is stale; read again and re-apply."""


class MappingError(ConnectorError):
    """A record cannot be turned into a valid Jira issue or IFS update; ``field`` names the culprit, ``reason`` is a
    stable code (``ml_connector.reasons``) and ``value`` the value that varies within it (the IFS value with no map
    entry, the Jira value that does not exist), so summaries and checks can group records by it."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        value: object | None = None,
        unmapped: bool = False,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.value = value
        self.unmapped = unmapped  # True: ``value`` (from IFS) has no entry in the value map and there is no default
