from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import MalformedResponse
from ml_connector.http import ApiSession, build_client
from ml_connector.ifs import IfsClient
from ml_connector.ifs.metadata import parse_metadata, typed_value
from ml_connector.ifs.odata import literal

CSDL = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="IfsApp.PurchaseOrderHandling" Alias="P" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EnumType Name="PurchaseOrderState">
        <Member Name="Planned" Value="0"/><Member Name="Released" Value="1"/>
      </EnumType>
      <EntityType Name="PurchaseOrder">
        <Key><PropertyRef Name="OrderNo"/></Key>
        <Property Name="OrderNo" Type="Edm.String" Nullable="false" MaxLength="12"/>
        <Property Name="OrderDate" Type="Edm.Date"/>
        <Property Name="Cf_Changed_At" Type="Edm.DateTimeOffset"/>
        <Property name="ignored" Type="Edm.String"/>
        <Property Name="TotalAmount" Type="Edm.Decimal"/>
        <Property Name="Objstate" Type="P.PurchaseOrderState"/>
        <NavigationProperty Name="LinePartArray" Type="Collection(P.PurchaseOrderLinePart)"/>
      </EntityType>
      <EntityType Name="PurchaseOrderLinePart">
        <Key><PropertyRef Name="OrderNo"/><PropertyRef Name="LineNo"/><PropertyRef Name="ReleaseNo"/></Key>
        <Property Name="OrderNo" Type="Edm.String"/><Property Name="LineNo" Type="Edm.String"/>
        <Property Name="ReleaseNo" Type="Edm.String"/>
      </EntityType>
      <Action Name="PurchaseOrder_Release" IsBound="true">
        <Parameter Name="it" Type="P.PurchaseOrder"/>
      </Action>
      <Action Name="CopyLines" IsBound="false">
        <Parameter Name="Selection" Type="Edm.String"/><ReturnType Type="Edm.String"/>
      </Action>
      <EntityContainer Name="Main">
        <EntitySet Name="PurchaseOrderSet" EntityType="IfsApp.PurchaseOrderHandling.PurchaseOrder"/>
        <EntitySet Name="PurchaseOrderLinePartSet" EntityType="P.PurchaseOrderLinePart"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>"""


def test_parses_sets_keys_types_enums_actions() -> None:
    meta = parse_metadata(
        CSDL.replace(
            'EntityType="P.PurchaseOrderLinePart"', 'EntityType="IfsApp.PurchaseOrderHandling.PurchaseOrderLinePart"'
        )
    )
    assert meta.namespace == "IfsApp.PurchaseOrderHandling"
    assert set(meta.entity_sets) == {"PurchaseOrderSet", "PurchaseOrderLinePartSet"}
    assert meta.keys("PurchaseOrderSet") == ("OrderNo",)
    assert meta.keys("PurchaseOrderLinePartSet") == ("OrderNo", "LineNo", "ReleaseNo")
    prop = meta.property("PurchaseOrderSet", "OrderNo")
    assert (prop.type, prop.nullable, prop.max_length) == ("Edm.String", False, 12)
    assert meta.property("PurchaseOrderSet", "Objstate").type == "IfsApp.PurchaseOrderHandling.PurchaseOrderState"
    assert [a.name for a in meta.bound_actions("PurchaseOrderSet")] == ["PurchaseOrder_Release"]
    unbound = [a for a in meta.actions if not a.bound]
    assert unbound[0].parameters == {"Selection": "Edm.String"} and unbound[0].return_type == "Edm.String"
    et = meta.entity_set("PurchaseOrderSet").entity_type
    assert et.navigation["LinePartArray"] == "Collection(IfsApp.PurchaseOrderHandling.PurchaseOrderLinePart)"
    with pytest.raises(KeyError):
        meta.entity_set("Nope")


def test_typed_values_render_typed_literals() -> None:
    meta = parse_metadata(CSDL)
    assert (
        literal(meta.typed_value("PurchaseOrderSet", "Cf_Changed_At", "2025-01-31T10:00:00Z")) == "2025-01-31T10:00:00Z"
    )
    assert meta.typed_value("PurchaseOrderSet", "Cf_Changed_At", "2025-01-31T11:00:00+01:00") == dt.datetime(
        2025, 1, 31, 10, tzinfo=dt.UTC
    )
    assert literal(meta.typed_value("PurchaseOrderSet", "OrderDate", "2025-01-31")) == "2025-01-31"
    assert literal(meta.typed_value("PurchaseOrderSet", "OrderNo", "2025-01-31")) == "'2025-01-31'"
    assert meta.typed_value("PurchaseOrderSet", "TotalAmount", "12.5") == Decimal("12.5")
    assert literal(meta.typed_value("PurchaseOrderSet", "Objstate", "Planned")) == (
        "IfsApp.PurchaseOrderHandling.PurchaseOrderState'Planned'"
    )
    assert meta.typed_value("PurchaseOrderSet", "Cf_Changed_At", None) is None


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><x>&lol4;</x></edmx:Edmx>"""


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>',
        '<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://evil.test/x.dtd"><x/>',
    ],
)
def test_documents_with_a_dtd_are_refused_unparsed(document: str) -> None:
    with pytest.raises(ValueError, match=r"\$metadata refused unparsed: it declares a DTD or entities"):
        parse_metadata(document)


def test_the_client_reports_an_entity_bomb_as_a_malformed_response() -> None:
    def serve(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=BILLION_LAUGHS.encode(), headers={"Content-Type": "application/xml"})

    settings = HttpSettings(max_attempts=1)
    http = build_client("http://ifs.test/projection/v1/", settings, transport=httpx2.MockTransport(serve))
    client = IfsClient(ApiSession(http, system="ifs", settings=settings))
    with pytest.raises(MalformedResponse, match=r"expected a CSDL document .* refused unparsed"):
        client.metadata("PurchaseOrderHandling")


@pytest.mark.parametrize(
    ("edm_type", "number", "text"),
    [
        ("Edm.Decimal", 1234.5, "1234.5"),
        ("Edm.Decimal", 0.1, "0.1"),
        ("Edm.Decimal", -7, "-7"),
        ("Edm.Int64", 9007199254740993, "9007199254740993"),  # beyond a double's exact range: only a string is safe
        ("Edm.Int64", -3, "-3"),
    ],
)
def test_decimal_and_int64_read_the_same_as_number_or_ieee754_string(edm_type: str, number: Any, text: str) -> None:
    """IEEE754Compatible=true servers send Edm.Decimal and Edm.Int64 as JSON strings; keyset paging must build the
    same literal from either form."""
    from_number, from_text = typed_value(edm_type, number), typed_value(edm_type, text)
    assert literal(from_number) == literal(from_text) == text  # the keyset filter is all the values are used for


def test_an_ieee754_string_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError):
        typed_value("Edm.Decimal", "12,5")
    with pytest.raises(ValueError):
        typed_value("Edm.Int64", "1.5")
