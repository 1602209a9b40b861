"""Field registry: resolve configured field names to Jira ids (``customfield_N``).

Custom field names are not unique in Jira, so a name that matches several fields is an error naming every candidate
id, unless the caller's expected type picks exactly one. Ids are accepted as they are, so a config can always pin one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ml_connector.errors import ConfigError

_FIELD_ID = re.compile(r"^customfield_\d+$")
# The type suffixes a configured name may carry, as Jira's short custom type they stand for.
_TYPE_SUFFIXES = {
    "text": "textfield",
    "textfield": "textfield",
    "select": "select",
    "textarea": "textarea",
    "number": "float",
    "float": "float",
}


def split_field_name(name: str) -> tuple[str, str | None]:
    """``"Cost Center:text"`` → (``"Cost Center"``, ``"textfield"``); a type suffix picks one of same-named fields."""
    base, sep, suffix = name.rpartition(":")
    if not sep or not base or suffix not in _TYPE_SUFFIXES:
        return name, None
    return base, _TYPE_SUFFIXES[suffix]


@dataclass(frozen=True)
class FieldInfo:
    id: str
    name: str
    custom: bool
    schema_type: str | None  # "string", "option", "array", ...
    custom_type: str | None  # full key, e.g. "com.atlassian.jira.plugin.system.customfieldtypes:select"
    clause_names: tuple[str, ...] = ()

    @property
    def short_type(self) -> str | None:
        """``select`` / ``textfield`` / ``textarea``: the part of the custom type key after the colon."""
        return self.custom_type.rsplit(":", 1)[-1] if self.custom_type else None

    def has_type(self, wanted: str) -> bool:
        wanted = wanted.lower()
        return wanted in {
            (self.short_type or "").lower(),
            (self.custom_type or "").lower(),
            (self.schema_type or "").lower(),
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> FieldInfo:
        schema = data.get("schema") or {}
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or data["id"]),
            custom=bool(data.get("custom")),
            schema_type=schema.get("type"),
            custom_type=schema.get("custom"),
            clause_names=tuple(data.get("clauseNames") or ()),
        )


class FieldRegistry:
    """An immutable view of ``GET /rest/api/3/field``; build a new one to refresh."""

    def __init__(self, fields: Iterable[FieldInfo | Mapping[str, Any]]) -> None:
        infos = [f if isinstance(f, FieldInfo) else FieldInfo.from_api(f) for f in fields]
        self._by_id = {f.id: f for f in infos}
        self._by_name: dict[str, list[FieldInfo]] = {}
        for info in infos:
            self._by_name.setdefault(info.name.casefold(), []).append(info)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, field_id: object) -> bool:
        return field_id in self._by_id

    def infos(self) -> list[FieldInfo]:
        """Every field, as read."""
        return list(self._by_id.values())

    def names(self) -> list[str]:
        """Every field's name, each once (for "did you mean")."""
        return sorted({f.name for f in self._by_id.values()})

    def get(self, field_id: str) -> FieldInfo | None:
        return self._by_id.get(field_id)

    def candidates(self, name: str) -> list[FieldInfo]:
        """Fields named ``name``: exact-case matches first win over case-insensitive ones."""
        found = self._by_name.get(name.casefold(), [])
        exact = [f for f in found if f.name == name]
        return exact or list(found)

    def resolve_configured(self, configured: str, *, path: str | None = None) -> str:
        """The id for a ``mapping.custom_fields`` key: an id, a name, or a name with a type suffix.

        A failure is a ``ConfigError``; ``path`` (the key's config path) prefixes its message when given."""
        name, wanted_type = split_field_name(configured)
        try:
            return self.resolve(name, field_type=wanted_type)
        except ConfigError as exc:
            if path is None:
                raise
            raise ConfigError(str(exc), path=path) from None

    def resolve(self, name_or_id: str, *, field_type: str | None = None) -> str:
        """The id for a configured field; ``field_type`` (``select``, ``textfield``, ``string``...) disambiguates."""
        if name_or_id in self._by_id:
            info = self._by_id[name_or_id]
            if field_type and not info.has_type(field_type):
                raise ConfigError(
                    f"Jira field {name_or_id} ({info.name}) is of type {info.short_type or info.schema_type}, "
                    f"not {field_type}"
                )
            return name_or_id
        if _FIELD_ID.match(name_or_id):
            raise ConfigError(f"Jira field {name_or_id} does not exist or is not visible to the connector's user")
        found = self.candidates(name_or_id)
        if not found:
            raise ConfigError(f"no Jira field named {name_or_id!r} is visible to the connector's user")
        if field_type:
            typed = [f for f in found if f.has_type(field_type)]
            if not typed:
                described = ", ".join(f"{f.id} ({f.short_type or f.schema_type})" for f in found)
                raise ConfigError(f"no Jira field named {name_or_id!r} has type {field_type}: found {described}")
            found = typed
        if len(found) > 1:
            described = ", ".join(f"{f.id} ({f.short_type or f.schema_type})" for f in found)
            raise ConfigError(
                f"Jira field name {name_or_id!r} is ambiguous: {described}; "
                "configure the field id or its type to choose one"
            )
        return found[0].id
