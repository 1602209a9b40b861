"""Discovery: the CSDL ``$metadata`` of a projection (parsed with defusedxml: no DTDs, no entities).

Used by ``check`` (does the set, property, enum value or action the configuration names exist?) and by the client
itself: keyset paging needs each order key's EDM type to write a correctly typed literal for the last value seen
(a DateTimeOffset compared with a quoted string is a different filter, or a 400).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ml_connector.ifs.odata import EnumLiteral, Scalar


@dataclass(frozen=True)
class Property:
    name: str
    type: str  # "Edm.String", "Edm.DateTimeOffset", "IfsApp.X.SomeEnum", "Collection(...)"
    nullable: bool = True
    max_length: int | None = None


@dataclass(frozen=True)
class EntityType:
    name: str
    qualified_name: str
    keys: tuple[str, ...]
    properties: Mapping[str, Property]
    navigation: Mapping[str, str] = field(default_factory=dict)  # name -> target type (maybe "Collection(...)")


@dataclass(frozen=True)
class EnumType:
    name: str
    qualified_name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    name: str
    qualified_name: str
    bound: bool
    binding_type: str | None  # qualified entity type of the binding parameter
    parameters: Mapping[str, str]  # excluding the binding parameter
    return_type: str | None


@dataclass(frozen=True)
class EntitySetInfo:
    name: str
    entity_type: EntityType


@dataclass(frozen=True)
class ServiceMetadata:
    """One projection's metadata (all schemas of the document merged)."""

    namespace: str
    entity_sets: Mapping[str, EntitySetInfo]
    entity_types: Mapping[str, EntityType]  # by qualified name
    enum_types: Mapping[str, EnumType]  # by qualified name
    actions: tuple[Action, ...]

    def entity_set(self, name: str) -> EntitySetInfo:
        try:
            return self.entity_sets[name]
        except KeyError:
            raise KeyError(f"no entity set {name!r} in {self.namespace}") from None

    def keys(self, entity_set: str) -> tuple[str, ...]:
        return self.entity_set(entity_set).entity_type.keys

    def property(self, entity_set: str, name: str) -> Property:
        props = self.entity_set(entity_set).entity_type.properties
        if name not in props:
            raise KeyError(f"no property {name!r} on {entity_set}")
        return props[name]

    def bound_actions(self, entity_set: str) -> list[Action]:
        qualified = self.entity_set(entity_set).entity_type.qualified_name
        return [a for a in self.actions if a.bound and a.binding_type == qualified]

    def typed_value(self, entity_set: str, prop: str, value: Any) -> Scalar:
        """A JSON value of ``prop`` as the Python value whose OData literal has the property's type."""
        return typed_value(self.property(entity_set, prop).type, value, enum_types=self.enum_types)


def typed_value(edm_type: str, value: Any, *, enum_types: Mapping[str, EnumType] | None = None) -> Scalar:
    """Convert a JSON value of ``edm_type`` so :func:`ml_connector.ifs.odata.literal` renders the right literal."""
    if value is None:
        return None
    if enum_types is not None and edm_type in enum_types:
        return EnumLiteral(edm_type, str(value))
    if edm_type == "Edm.DateTimeOffset":
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if edm_type == "Edm.Date":
        return dt.date.fromisoformat(str(value))
    if edm_type == "Edm.Boolean":
        return bool(value)
    if edm_type in {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}:
        return int(value)
    if edm_type in {"Edm.Decimal", "Edm.Double", "Edm.Single"}:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            return Decimal(str(value))  # IEEE754Compatible servers send numbers as strings
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if isinstance(value, bool | int | float):
        return value
    return str(value)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name]


def parse_metadata(content: bytes | str) -> ServiceMetadata:
    """Parse a CSDL (EDMX 4.0) document."""
    raw = content.encode() if isinstance(content, str) else content
    try:
        # CSDL never needs a DTD: refusing any keeps entity expansion ("billion laughs") and external entities out.
        root = fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ValueError(f"$metadata refused unparsed: it declares a DTD or entities ({exc})") from None
    schemas = [e for e in root.iter() if _local(e.tag) == "Schema"]
    if not schemas:
        raise ValueError("no Schema element in $metadata")
    namespace = schemas[0].get("Namespace", "")
    entity_types: dict[str, EntityType] = {}
    enum_types: dict[str, EnumType] = {}
    actions: list[Action] = []
    containers: list[tuple[str, ET.Element]] = []
    for schema in schemas:
        ns = schema.get("Namespace", "")
        alias = schema.get("Alias")
        for el in schema:
            kind = _local(el.tag)
            name = el.get("Name", "")
            qualified = f"{ns}.{name}"
            if kind == "EntityType":
                keys = tuple(
                    ref.get("Name", "") for key in _children(el, "Key") for ref in _children(key, "PropertyRef")
                )
                props = {
                    p.get("Name", ""): Property(
                        name=p.get("Name", ""),
                        type=_unalias(p.get("Type", "Edm.String"), alias, ns),
                        nullable=p.get("Nullable", "true").lower() != "false",
                        max_length=int(p.get("MaxLength", "")) if p.get("MaxLength", "").isdigit() else None,
                    )
                    for p in _children(el, "Property")
                }
                nav = {
                    n.get("Name", ""): _unalias(n.get("Type", ""), alias, ns)
                    for n in _children(el, "NavigationProperty")
                }
                entity_types[qualified] = EntityType(name, qualified, keys, props, nav)
            elif kind == "EnumType":
                members = tuple(m.get("Name", "") for m in _children(el, "Member"))
                enum_types[qualified] = EnumType(name, qualified, members)
            elif kind in {"Action", "Function"}:
                params = [
                    (p.get("Name", ""), _unalias(p.get("Type", ""), alias, ns)) for p in _children(el, "Parameter")
                ]
                bound = el.get("IsBound", "false").lower() == "true"
                binding = params[0][1] if bound and params else None
                returns = _children(el, "ReturnType")
                actions.append(
                    Action(
                        name=name,
                        qualified_name=qualified,
                        bound=bound,
                        binding_type=binding,
                        parameters=dict(params[1:] if bound else params),
                        return_type=_unalias(returns[0].get("Type", ""), alias, ns) if returns else None,
                    )
                )
            elif kind == "EntityContainer":
                containers.append((ns, el))
    entity_sets: dict[str, EntitySetInfo] = {}
    for _ns, container in containers:
        for es in _children(container, "EntitySet"):
            type_name = es.get("EntityType", "")
            entity_type = entity_types.get(type_name)
            if entity_type is None:
                continue
            entity_sets[es.get("Name", "")] = EntitySetInfo(es.get("Name", ""), entity_type)
    return ServiceMetadata(namespace, entity_sets, entity_types, enum_types, tuple(actions))


def _unalias(type_name: str, alias: str | None, namespace: str) -> str:
    if alias and type_name.startswith(alias + "."):
        return namespace + type_name[len(alias) :]
    if alias and type_name.startswith(f"Collection({alias}."):
        return f"Collection({namespace}{type_name[len('Collection(') + len(alias) :]}"
    return type_name
