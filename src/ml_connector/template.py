"""Safe templates: ``{OrderNo}``, ``{supplier.Name}``, ``{lines[0].CodeA}``, ``{Description|upper}``.

A template can read values from the mapping context and nothing else: no attribute access on Python objects, no
calls, no expressions. ``{{`` and ``}}`` are literal braces. A missing value renders as an empty string unless a
fallback is given with ``|or:text``.

A leaf module (it imports only ``errors``): ``config`` checks templates when it loads, ``mapping`` renders them,
and neither imports the other's package for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ml_connector.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*|\[\d+\])*$")
_SEGMENT = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_FILTERS = {"upper", "lower", "trim", "date"}


def _resolve(path: str, context: Mapping[str, Any]) -> Any:
    value: Any = context
    for match in _SEGMENT.finditer(path):
        name, index = match.group(1), match.group(2)
        if name is not None:
            if not isinstance(value, Mapping):
                return None
            value = value.get(name)
        else:
            if not isinstance(value, Sequence) or isinstance(value, str):
                return None
            i = int(index)
            value = value[i] if i < len(value) else None
        if value is None:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _apply(value: str, flt: str) -> str:
    if flt == "upper":
        return value.upper()
    if flt == "lower":
        return value.lower()
    if flt == "trim":
        return value.strip()
    if flt == "date":
        return value[:10]
    raise AssertionError(flt)  # pragma: no cover - rejected by check_template


def check_template(template: str, *, path: str) -> None:
    """Raise ``ConfigError`` (naming ``path``) if the template uses anything but paths and known filters."""
    for match in _PLACEHOLDER.finditer(template):
        inner = match.group(1)
        if inner is None:
            continue
        expr, *filters = [p.strip() for p in inner.split("|")]
        if not _PATH.match(expr):
            raise ConfigError(
                f"template placeholder {{{inner}}} must be a field path like OrderNo or supplier.Name", path=path
            )
        for flt in filters:
            if flt not in _FILTERS and not flt.startswith("or:"):
                raise ConfigError(
                    f"unknown template filter {flt!r} (use upper, lower, trim, date, or:<text>)", path=path
                )


def render(template: str, context: Mapping[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        expr, *filters = [p.strip() for p in match.group(1).split("|")]
        value = _resolve(expr, context)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        text = _as_text(value)
        for flt in filters:
            if flt.startswith("or:"):
                text = text or flt[3:]
            else:
                text = _apply(text, flt)
        return text

    return _PLACEHOLDER.sub(substitute, template)


def resolve_value(expr: str, context: Mapping[str, Any]) -> Any:
    """A bare field path (``supplier.Cf_Supplier_Tier``) or a template (``{WorkTypeId}-{PriorityId}``)."""
    if "{" in expr:
        return render(expr, context)
    return _resolve(expr, context)
