"""What the simulated IFS Cloud serves: entity kinds, projections, entity sets, enums and bound actions.

An *entity kind* is a record store (PurchaseOrder, WorkOrder, ...); a projection exposes kinds through entity sets.
Two sets can share one kind: work orders are read through ``ActiveWorkOrdersHandling`` and written through
``PrepareWorkOrderHandling``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from xml.sax.saxutils import quoteattr

from ml_connector.sim.ifs.odata_syntax import BOOL, DATE, DATETIME, DECIMAL, ENUM, INT, STRING, PropType, edm_name

BASE_PATH = "/main/ifsapplications/projection/v1"


@dataclass(frozen=True)
class Nav:
    name: str
    target: str  # entity kind
    local: tuple[str, ...]  # local properties matching the target's keys, in key order
    collection: bool = False


@dataclass(frozen=True)
class Transition:
    action: str  # e.g. "Release"
    sources: tuple[str, ...]
    target: str


@dataclass(frozen=True)
class EntityKind:
    name: str  # control-API name
    type_name: str  # OData entity type name
    luname: str
    keys: tuple[str, ...]
    props: Mapping[str, str]  # name -> kind (STRING, INT, ... or ENUM)
    db_keys: tuple[str, ...]  # IFS db column names of the keys, for keyref
    writable: frozenset[str] = frozenset()
    navs: tuple[Nav, ...] = ()
    enum_name: str | None = None  # enum type of Objstate (unqualified)
    states: tuple[str, ...] = ()
    initial_state: str | None = None
    transitions: tuple[Transition, ...] = ()
    max_length: Mapping[str, int] = field(default_factory=dict)

    @cached_property
    def temporal(self) -> tuple[str, ...]:
        """Properties whose values are dates or datetimes (rendered as text on the wire)."""
        return tuple(name for name, k in self.props.items() if k in (DATE, DATETIME))

    def nav(self, name: str) -> Nav | None:
        return next((n for n in self.navs if n.name == name), None)


@dataclass(frozen=True)
class EntitySet:
    name: str
    kind: str
    writable: bool = False  # PATCH and bound actions allowed


@dataclass(frozen=True)
class Projection:
    name: str
    sets: tuple[EntitySet, ...]

    @property
    def namespace(self) -> str:
        return f"IfsApp.{self.name}"

    def entity_set(self, name: str) -> EntitySet | None:
        return next((s for s in self.sets if s.name == name), None)


PO_STATES = ("Planned", "Released", "Confirmed", "Arrived", "Received", "Closed", "Cancelled")
WO_STATES = ("WorkRequest", "Prepared", "Released", "Started", "WorkDone", "Reported", "Finished", "Cancelled")
PROJECT_STATES = ("Initialized", "Approved", "Started", "Completed", "Closed")

KINDS: dict[str, EntityKind] = {
    k.name: k
    for k in (
        EntityKind(
            name="PurchaseOrder",
            type_name="PurchaseOrder",
            luname="PurchaseOrder",
            keys=("OrderNo",),
            db_keys=("ORDER_NO",),
            props={
                "OrderNo": STRING,
                "VendorNo": STRING,
                "OrderDate": DATE,
                "DateEntered": DATETIME,
                "Objstate": ENUM,
                "Contract": STRING,
                "Company": STRING,
                "BuyerCode": STRING,
                "AuthorizeCode": STRING,
                "CurrencyCode": STRING,
                "ProjectId": STRING,
                "Description": STRING,
                "TotalAmount": DECIMAL,
                "Cf_Changed_At": DATETIME,
                "Cf_Jira_Status": STRING,
                "Cf_Jira_Key": STRING,
            },
            max_length={"OrderNo": 30, "Description": 200, "Cf_Jira_Status": 100, "Cf_Jira_Key": 50},
            writable=frozenset({"Description", "Cf_Jira_Status", "Cf_Jira_Key"}),
            navs=(
                Nav("VendorNoRef", "Supplier", ("VendorNo",)),
                Nav("BuyerCodeRef", "Person", ("BuyerCode",)),
                Nav("ProjectRef", "Project", ("ProjectId",)),
                Nav("LinePartArray", "PurchaseOrderLine", ("OrderNo",), collection=True),
            ),
            enum_name="PurchaseOrderState",
            states=PO_STATES,
            initial_state="Planned",
            transitions=(
                Transition("Release", ("Planned",), "Released"),
                Transition("Confirm", ("Released",), "Confirmed"),
                Transition("Close", ("Released", "Confirmed", "Arrived", "Received"), "Closed"),
                Transition("Cancel", ("Planned", "Released", "Confirmed"), "Cancelled"),
            ),
        ),
        EntityKind(
            name="PurchaseOrderLine",
            type_name="PurchaseOrderLinePart",
            luname="PurchaseOrderLinePart",
            keys=("OrderNo", "LineNo", "ReleaseNo"),
            db_keys=("ORDER_NO", "LINE_NO", "RELEASE_NO"),
            props={
                "OrderNo": STRING,
                "LineNo": STRING,
                "ReleaseNo": STRING,
                "PartNo": STRING,
                "Description": STRING,
                "BuyQtyDue": DECIMAL,
                "BuyUnitPrice": DECIMAL,
                "NetAmtCurr": DECIMAL,
                "ProjectId": STRING,
                "CodeA": STRING,
                "CodeB": STRING,
                "CodeF": STRING,
            },
            navs=(Nav("OrderRef", "PurchaseOrder", ("OrderNo",)), Nav("ProjectRef", "Project", ("ProjectId",))),
        ),
        EntityKind(
            name="WorkOrder",
            type_name="ActiveSeparate",
            luname="ActiveSeparate",
            keys=("WoNo",),
            db_keys=("WO_NO",),
            props={
                "WoNo": INT,
                "ErrDescr": STRING,
                "ErrDescrLo": STRING,
                "WorkTypeId": STRING,
                "PriorityId": STRING,
                "OrgCode": STRING,
                "MchCode": STRING,
                "MchCodeDescription": STRING,
                "Contract": STRING,
                "Company": STRING,
                "WorkLeaderSign": STRING,
                "ReportedBy": STRING,
                "RegDate": DATETIME,
                "PlanSDate": DATETIME,
                "PlanFDate": DATETIME,
                "Objstate": ENUM,
                "Cf_Changed_At": DATETIME,
                "Cf_Jira_Status": STRING,
                "Cf_Jira_Key": STRING,
            },
            max_length={"ErrDescr": 60, "ErrDescrLo": 2000, "Cf_Jira_Status": 100, "Cf_Jira_Key": 50},
            writable=frozenset({"ErrDescr", "ErrDescrLo", "Cf_Jira_Status", "Cf_Jira_Key"}),
            navs=(
                Nav("WorkLeaderSignRef", "Person", ("WorkLeaderSign",)),
                Nav("ReportedByRef", "Person", ("ReportedBy",)),
            ),
            enum_name="WorkOrderState",
            states=WO_STATES,
            initial_state="WorkRequest",
            transitions=(
                Transition("Release", ("WorkRequest", "Prepared"), "Released"),
                Transition("StartOrder", ("WorkRequest", "Prepared", "Released"), "Started"),
                Transition("WorkDone", ("Released", "Started"), "WorkDone"),
                Transition("Finish", ("WorkDone", "Reported"), "Finished"),
                Transition("Cancel", ("WorkRequest", "Prepared", "Released", "Started"), "Cancelled"),
            ),
        ),
        EntityKind(
            name="Supplier",
            type_name="SupplierInfoGeneral",
            luname="SupplierInfoGeneral",
            keys=("SupplierId",),
            db_keys=("SUPPLIER_ID",),
            props={
                "SupplierId": STRING,
                "Name": STRING,
                "Country": STRING,
                "Cf_Supplier_Tier": STRING,
                "Cf_Contact_Email": STRING,
            },
        ),
        EntityKind(
            name="Person",
            type_name="PersonInfo",
            luname="PersonInfo",
            keys=("PersonId",),
            db_keys=("PERSON_ID",),
            props={"PersonId": STRING, "Name": STRING, "Email": STRING, "UserId": STRING},
        ),
        EntityKind(
            name="Project",
            type_name="Project",
            luname="Project",
            keys=("ProjectId",),
            db_keys=("PROJECT_ID",),
            props={"ProjectId": STRING, "Name": STRING, "Company": STRING, "Manager": STRING, "Objstate": ENUM},
            navs=(Nav("ManagerRef", "Person", ("Manager",)),),
            enum_name="ProjectState",
            states=PROJECT_STATES,
            initial_state="Initialized",
        ),
    )
}

PROJECTIONS: dict[str, Projection] = {
    p.name: p
    for p in (
        Projection(
            "PurchaseOrderHandling",
            (
                EntitySet("PurchaseOrderSet", "PurchaseOrder", writable=True),
                EntitySet("PurchaseOrderLinePartSet", "PurchaseOrderLine"),
            ),
        ),
        Projection("ActiveWorkOrdersHandling", (EntitySet("ActiveSeparateSet", "WorkOrder"),)),
        Projection("PrepareWorkOrderHandling", (EntitySet("ActiveSeparateSet", "WorkOrder", writable=True),)),
        Projection("SupplierHandling", (EntitySet("SupplierInfoGeneralSet", "Supplier"),)),
        Projection("PersonHandling", (EntitySet("PersonInfoSet", "Person"),)),
        Projection("ProjectsHandling", (EntitySet("Projects", "Project"),)),
    )
}


def prop_types(kind: EntityKind, projection: Projection) -> dict[str, PropType]:
    """Property types as the filter compiler of ``projection`` sees them (enum types are projection-qualified)."""
    result: dict[str, PropType] = {}
    for name, k in kind.props.items():
        if k == ENUM:
            result[name] = PropType(ENUM, f"{projection.namespace}.{kind.enum_name}", kind.states)
        else:
            result[name] = PropType(k)
    return result


def action_name(kind: EntityKind, projection: Projection, action: str) -> str:
    return f"{projection.namespace}.{kind.type_name}_{action}"


# --------------------------------------------------------------------------------------------------------------
# CSDL


def _reachable_kinds(projection: Projection) -> list[EntityKind]:
    seen: dict[str, EntityKind] = {}
    stack = [KINDS[s.kind] for s in projection.sets]
    while stack:
        kind = stack.pop()
        if kind.name in seen:
            continue
        seen[kind.name] = kind
        stack.extend(KINDS[n.target] for n in kind.navs)
    return list(seen.values())


def metadata_xml(projection: Projection) -> str:
    """A CSDL document listing entity types, properties with Edm types, keys, enum types and bound actions."""
    ns = projection.namespace
    out: list[str] = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        f'<Schema Namespace={quoteattr(ns)} xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    kinds = _reachable_kinds(projection)
    for kind in kinds:
        if kind.enum_name:
            out.append(f'<EnumType Name="{kind.enum_name}">')
            out.extend(f'<Member Name="{m}" Value="{i}"/>' for i, m in enumerate(kind.states))
            out.append("</EnumType>")
    for kind in kinds:
        out.append(f'<EntityType Name="{kind.type_name}">')
        out.append("<Key>" + "".join(f'<PropertyRef Name="{k}"/>' for k in kind.keys) + "</Key>")
        for env in ("luname", "keyref", "Objgrants"):
            out.append(f'<Property Name="{env}" Type="Edm.String"/>')
        for name, k in kind.props.items():
            edm = f"{ns}.{kind.enum_name}" if k == ENUM else edm_name(k)
            attrs = f' Name="{name}" Type="{edm}"'
            if name in kind.keys:
                attrs += ' Nullable="false"'
            if name in kind.max_length:
                attrs += f' MaxLength="{kind.max_length[name]}"'
            if k == DECIMAL:
                attrs += ' Scale="variable"'
            out.append(f"<Property{attrs}/>")
        for nav in kind.navs:
            target = f"{ns}.{KINDS[nav.target].type_name}"
            edm = f"Collection({target})" if nav.collection else target
            out.append(f'<NavigationProperty Name="{nav.name}" Type="{edm}"/>')
        out.append("</EntityType>")
    for entity_set in projection.sets:
        kind = KINDS[entity_set.kind]
        if not entity_set.writable:
            continue
        for transition in kind.transitions:
            out.append(f'<Action Name="{kind.type_name}_{transition.action}" IsBound="true">')
            out.append(f'<Parameter Name="it" Type="{ns}.{kind.type_name}" Nullable="false"/>')
            out.append("</Action>")
    out.append('<EntityContainer Name="Main">')
    for entity_set in projection.sets:
        kind = KINDS[entity_set.kind]
        out.append(f'<EntitySet Name="{entity_set.name}" EntityType="{ns}.{kind.type_name}">')
        updatable = "true" if entity_set.writable else "false"
        out.append(
            '<Annotation Term="Org.OData.Capabilities.V1.UpdateRestrictions"><Record>'
            f'<PropertyValue Property="Updatable" Bool="{updatable}"/></Record></Annotation>'
        )
        out.append("</EntitySet>")
    out.append("</EntityContainer>")
    out.extend(["</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"])
    return "\n".join(out) + "\n"


__all__ = [
    "BASE_PATH",
    "BOOL",
    "KINDS",
    "PROJECTIONS",
    "EntityKind",
    "EntitySet",
    "Nav",
    "Projection",
    "Transition",
    "action_name",
    "metadata_xml",
    "prop_types",
]
