"""The one place HTTP clients are built: timeouts, User-Agent and TLS verification are never forgotten."""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from ml_connector import __version__
from ml_connector.config.connections import HttpSettings

# Connections per client: the pool grows with http.max_in_flight (below).
MAX_CONNECTIONS = 20
MAX_KEEPALIVE = 10


def user_agent() -> str:
    return f"ml-connector/{__version__}"


def build_client(
    base_url: str,
    settings: HttpSettings,
    *,
    auth: httpx2.Auth | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx2.BaseTransport | None = None,
) -> httpx2.Client:
    timeout = httpx2.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    merged = {"User-Agent": user_agent(), "Accept": "application/json"}
    merged.update(headers or {})
    return httpx2.Client(
        base_url=base_url,
        auth=auth,
        headers=merged,
        timeout=timeout,
        verify=settings.verify_tls,
        transport=transport,
        follow_redirects=False,
        # Room for the adaptive in-flight limit of a busy endpoint plus the odd call to another one.
        limits=httpx2.Limits(
            max_connections=max(MAX_CONNECTIONS, settings.max_in_flight + MAX_KEEPALIVE),
            max_keepalive_connections=max(MAX_KEEPALIVE, settings.max_in_flight),
        ),
    )
