"""Small pieces every part of the Jira simulator shares: the error response, the caller, time and number rendering."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")


class ApiError(Exception):
    """A Jira error response: status plus ``{"errorMessages", "errors"}`` (or any body for OAuth errors)."""

    def __init__(
        self,
        status: int,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, messages, errors)
        self.status = status
        self.body = body if body is not None else {"errorMessages": messages or [], "errors": errors or {}}
        self.headers = headers or {}


@dataclass
class Principal:
    """Who is calling: the account, and for OAuth the client (app) it acts through."""

    account_id: str
    auth: str  # "basic" | "bearer"
    client_id: str | None = None


def render_dt(dt: datetime, tz: ZoneInfo) -> str:
    """Jira's rendering: local to the account's zone, milliseconds, offset without colon."""
    local = dt.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_when(value: Any) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1], validate=True).decode()
    except (ValueError, IndexError):
        return None
    email, sep, token = decoded.partition(":")
    return (email, token) if sep else None


def offset_page(items: Sequence[T], start: int, size: int, render: Callable[[T], Any]) -> dict[str, Any]:
    """One ``startAt``/``maxResults`` page of ``items``, as Jira's paged lists show it."""
    page = items[start : start + size]
    return {
        "isLast": start + len(page) >= len(items),
        "maxResults": size,
        "startAt": start,
        "total": len(items),
        "values": [render(item) for item in page],
    }
