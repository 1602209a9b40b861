"""Settings that were removed from the configuration, accepted with a warning for one release.

Every other model refuses unknown keys, so without this list an upgrade would stop at a key the old release
documented. A retired key is dropped before validation and named in a deprecation note; in the next release it is
removed from this list and refused like any unknown key.
"""

from __future__ import annotations

from typing import Any

from ml_connector.errors import ConfigError

# YAML path → why it went (and what replaces it). Paths hold no list indices: only fixed-position keys retired.
RETIRED: dict[tuple[str, ...], str] = {
    ("ifs", "api_path"): "every IFS Cloud tenant serves projections under the same path",
    ("ifs", "token_refresh_margin"): "the token is refreshed a fixed 30 seconds (at most half its life) early",
    ("ifs", "time_zone_aware"): "the connector always asks IFS for time-zone-aware timestamps",
    ("jira", "auth", "redirect_uri"): "pass it to `ml-connector jira login --redirect-uri` for the consent",
    ("jira", "auth", "scopes"): "pass them to `ml-connector jira login --scope` for the consent",
    ("web", "max_form_bytes"): "dashboard forms are small; the 64 KiB limit is fixed",
    ("runner", "misfire_grace"): "a scheduled run up to 5 minutes late still starts; the grace is fixed",
    (
        "sync",
        "not_found_alert_min",
    ): "the alert needs at least 5 missing issues; only sync.max_not_found_share is tuned",
    ("sync", "writeback_conflict_retries"): "a write-back re-reads the IFS row up to 3 times after a 412",
    ("webhooks", "refresh_before"): "a dynamic webhook is refreshed 7 days before Jira's 30-day expiry",
    ("webhooks", "max_body_bytes"): "deliveries over 1 MiB are refused; the limit is fixed",
    ("webhooks", "read_timeout"): "a delivery must arrive within 10 seconds; the limit is fixed",
}

# Retired keys whose old value asked for something this release cannot do: any other value is refused, not dropped.
ONLY_VALUE: dict[tuple[str, ...], str] = {}


def drop_retired(data: Any) -> tuple[Any, tuple[str, ...]]:
    """``data`` without the retired keys (the input is not changed), and one deprecation note per key dropped."""
    notes: list[str] = []
    for path, why in RETIRED.items():
        if _holds(data, path):
            _refuse_other_value(data, path)
            data = _without(data, path)
            notes.append(
                f"{'.'.join(path)} is no longer a setting ({why}); it is ignored in this release and refused in "
                "the next: remove it from the config file"
            )
    return data, tuple(notes)


def _refuse_other_value(data: Any, path: tuple[str, ...]) -> None:
    allowed = ONLY_VALUE.get(path)
    value = _value(data, path)
    if allowed is not None and value != allowed:
        raise ConfigError(
            f"{value!r} is not available in this release (only {allowed!r} was ever supported); remove the key",
            path=".".join(path),
        )


def _value(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _holds(data: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


def _without(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``data`` with ``path`` removed, copying only the mappings along the path."""
    head, *rest = path
    if not rest:
        return {k: v for k, v in data.items() if k != head}
    return {**data, head: _without(data[head], tuple(rest))}
