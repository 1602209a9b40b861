"""YAML loading with ``${VAR}`` interpolation and validation errors that name the YAML path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ml_connector.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

# ${VAR}, ${VAR:-default}, ${file:/path/to/secret}
_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*|file:[^}]+)(?::-(?P<default>[^}]*))?\}")


# Keys holding credentials: a command that only reads the store (status, records, audit) may leave them unset.
SECRET_KEYS = frozenset({"client_secret", "api_token", "webhook_secret", "admin_token", "read_token"})


def unset_secret(name: str) -> str:
    """Stands in for a secret a store-only command does not need; long and unique so no validator takes it for a
    simulator's published secret."""
    return f"(unset: ${{{name}}} is not in the environment; this command does not use it)"


def interpolate(value: Any, *, env: Mapping[str, str] | None = None, path: str = "", store_only: bool = False) -> Any:
    """Replace ``${VAR}`` placeholders in every string of a parsed YAML tree.

    ``${file:/run/secrets/x}`` reads a secrets file (trailing newline stripped). A missing variable without a
    default is a ``ConfigError`` naming the YAML path, never an empty string that fails later; with ``store_only``
    a missing one under a secret key (SECRET_KEYS) becomes ``unset_secret`` instead.
    """
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {
            k: interpolate(v, env=env, path=f"{path}.{k}" if path else str(k), store_only=store_only)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, env=env, path=f"{path}[{i}]", store_only=store_only) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name.startswith("file:"):
            secret_path = Path(name[5:])
            try:
                return secret_path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise ConfigError(f"cannot read secrets file {secret_path}: {exc.strerror}", path=path) from None
        if name in env:
            return env[name]
        if default is not None:
            return default
        if store_only and path.rsplit(".", 1)[-1] in SECRET_KEYS:
            return unset_secret(name)
        raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}})", path=path)

    return _PLACEHOLDER.sub(substitute, value)


def read_yaml(path: Path, *, env: Mapping[str, str] | None = None, store_only: bool = False) -> dict[str, Any]:
    """Parse a YAML file into a mapping, interpolating the environment (``store_only``: see ``interpolate``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context = getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if context is not None and (mark is None or context.line != mark.line):
            where += f" (the construct opened at line {context.line + 1})"
        problem = getattr(exc, "problem", None)
        if problem and "unhashable key" in problem:  # YAML reads an unquoted {{ ... }} as a nested mapping
            problem += '; quote a template that starts with {{, e.g. summary: "{{ OrderNo }}"'
        raise ConfigError(f"{path} is not valid YAML{where}" + (f": {problem}" if problem else "")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    result: dict[str, Any] = interpolate(data, env=env, store_only=store_only)
    return result


def _location(loc: tuple[int | str, ...], root: str) -> str:
    parts: list[str] = [root] if root else []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] = f"{parts[-1]}[{item}]"
            else:
                parts.append(f"[{item}]")
        elif item.startswith("function-") or item in {"tagged-union"}:
            continue  # pydantic-internal segments that mean nothing to a YAML author
        else:
            parts.append(item)
    return ".".join(parts) or "(top level)"


def validate(model: type[ModelT], data: Any, *, root: str = "") -> ModelT:
    """Validate ``data`` against ``model``; the first problem becomes a ``ConfigError`` with its YAML path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            problems.append((_location(tuple(err["loc"]), root), _friendly(err["msg"])))
        first_path, first_msg = problems[0]
        extra = "".join(f"; {p}: {m}" for p, m in problems[1:4])
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        raise ConfigError(f"{first_msg}{extra}{more}", path=first_path) from None


def _friendly(message: str) -> str:
    return message.removeprefix("Value error, ")
