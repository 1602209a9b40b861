"""Many connections in one config file: a ``connections:`` list beside the settings every connection shares.

A connection is one IFS tenant and one Jira site with their credentials, budgets and flows. The file's top level
holds what the deployment shares (``SHARED_KEYS``: one store, one web app, one runner, one log setup); each item of
``connections:`` holds a ``name`` and that connection's own settings (``CONNECTION_KEYS``). A file without
``connections:`` is today's single-connection format and means one connection named ``default``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml_connector.errors import ConfigError

DEFAULT_CONNECTION = "default"
CONNECTION_NAME_PATTERN = r"^[a-z0-9_-]{1,40}$"
SHARED_KEYS = frozenset({"store", "web", "runner", "log_level", "log_format"})
CONNECTION_KEYS = frozenset({"name", "ifs", "jira", "flows", "sync", "lookups", "webhooks"})


def connection_items(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each connection's settings merged with the shared ones, with the YAML path its errors are named under
    (``""`` for a single-connection file, ``connections[1]`` for an item of the list)."""
    if "connections" not in data:
        return [("", data)]
    shared = _shared(data)
    items = data["connections"]
    if not isinstance(items, list) or not items:
        raise ConfigError(
            "must be a non-empty list of connections, each with a name, ifs, jira and flows", path="connections"
        )
    merged = [(f"connections[{index}]", _item(item, index, shared)) for index, item in enumerate(items)]
    _refuse_duplicates([item.get("name") for _, item in merged])
    return merged


def _shared(data: dict[str, Any]) -> dict[str, Any]:
    for key in data:
        if key in CONNECTION_KEYS:
            raise ConfigError(
                f"with a connections: list, {key} belongs to each connection: move it under connections[N].{key}",
                path=key,
            )
        if key not in SHARED_KEYS and key != "connections":
            raise ConfigError(
                f"not a setting; the top level of a file with connections: holds {', '.join(sorted(SHARED_KEYS))}",
                path=key,
            )
    return {key: value for key, value in data.items() if key in SHARED_KEYS}


def _item(item: Any, index: int, shared: dict[str, Any]) -> dict[str, Any]:
    path = f"connections[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"must be a mapping with a name, ifs, jira and flows, not {type(item).__name__}", path=path)
    if "name" not in item:
        raise ConfigError("every connection needs a name (lower-case letters, digits, - and _)", path=f"{path}.name")
    for key in item:
        if key in SHARED_KEYS:
            raise ConfigError(
                f"{key} is shared by every connection: move it to the top level of the file", path=f"{path}.{key}"
            )
    return {**shared, **item}


def _refuse_duplicates(names: Sequence[Any]) -> None:
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(
                f"connection name {name!r} is used twice (also connections[{names.index(name)}]); give each "
                "connection its own name",
                path=f"connections[{index}].name",
            )


def select(names: Sequence[str], wanted: str | None) -> str:
    """The connection a command works on: ``wanted``, or the only one; a clear error otherwise."""
    if wanted is None:
        if len(names) == 1:
            return names[0]
        raise ConfigError(
            f"the config file has {len(names)} connections ({', '.join(names)}); pick one with --connection NAME"
        )
    if wanted not in names:
        raise ConfigError(f"no connection named {wanted!r} (configured: {', '.join(names)})", path="connections")
    return wanted


def with_path(exc: ConfigError, root: str) -> ConfigError:
    """``exc`` with its YAML path under ``root`` (a template error names ``flows[0]...`` without the connection)."""
    if not root or (exc.path or "").startswith(root):
        return exc
    message = str(exc).removeprefix(f"{exc.path}: ") if exc.path else str(exc)
    return ConfigError(message, path=f"{root}.{exc.path}" if exc.path else root)
