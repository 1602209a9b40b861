"""``IEEE754Compatible=true`` (OData JSON format; ifs-api.md §3.1): in Accept, Edm.Decimal values and the count come
as JSON strings; in Content-Type, the body's decimals may be strings."""

from __future__ import annotations

from decimal import Decimal

from .conftest import LINES, PO, WO_READ, Ifs, po_url

IEEE = "application/json;odata.metadata=minimal;IEEE754Compatible=true"
DECIMALS = ("BuyQtyDue", "BuyUnitPrice", "NetAmtCurr")


def test_numbers_are_json_numbers_by_default(ifs: Ifs) -> None:
    response = ifs.get(PO, {"$top": "3", "$count": "true"})
    assert "IEEE754Compatible" not in response.headers["Content-Type"]
    body = response.json()
    assert isinstance(body["@odata.count"], int)
    assert all(isinstance(row["TotalAmount"], int | float) for row in body["value"])


def test_ieee754_accept_sends_decimals_and_the_count_as_strings(ifs: Ifs) -> None:
    plain = ifs.get(LINES, {"$top": "5", "$orderby": "OrderNo"}).json()["value"]
    response = ifs.get(LINES, {"$top": "5", "$orderby": "OrderNo", "$count": "true"}, Accept=IEEE)
    assert response.status_code == 200
    assert "IEEE754Compatible=true" in response.headers["Content-Type"]
    body = response.json()
    assert isinstance(body["@odata.count"], str) and int(body["@odata.count"]) > 5
    for number, text in zip(plain, body["value"], strict=True):
        for name in DECIMALS:
            if number[name] is None:
                assert text[name] is None
            else:
                assert isinstance(text[name], str) and Decimal(text[name]) == Decimal(repr(number[name]))
        assert text["OrderNo"] == number["OrderNo"]


def test_ieee754_applies_to_single_entities_select_and_is_case_insensitive(ifs: Ifs) -> None:
    accept = "application/json; ieee754compatible=TRUE"
    single = ifs.get(po_url("PO-000040"), Accept=accept).json()
    assert isinstance(single["TotalAmount"], str)
    selected = ifs.get(PO, {"$top": "2", "$select": "OrderNo,TotalAmount"}, Accept=accept).json()["value"]
    assert all(isinstance(row["TotalAmount"], str) for row in selected)
    work_order = ifs.get(f"{WO_READ}(WoNo=1001)", Accept=accept).json()
    assert isinstance(work_order["WoNo"], int), "Edm.Int32 stays a number"
    off = ifs.get(po_url("PO-000040"), Accept="application/json;IEEE754Compatible=false").json()
    assert isinstance(off["TotalAmount"], int | float)


def test_ieee754_content_type_accepts_decimal_strings_in_the_body(ifs: Ifs) -> None:
    body = {"Cf_Jira_Key": "N-1", "TotalAmount": "1234.50"}
    refused = ifs.patch(po_url("PO-700001"), body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ODP_DESERIALIZATION_ERROR"
    created = ifs.http.patch(
        f"/main/ifsapplications/projection/v1/{po_url('PO-700001')}",
        content=b'{"Cf_Jira_Key": "N-1", "TotalAmount": "1234.50"}',
        headers=ifs.headers(**{"Content-Type": "application/json;IEEE754Compatible=true", "Accept": IEEE}),
    )
    assert created.status_code == 201, created.text
    assert created.json()["TotalAmount"] == "1234.5"
    assert ifs.sim.get_raw("PurchaseOrder", "PO-700001")["TotalAmount"] == 1234.5
    numeric = ifs.http.patch(
        f"/main/ifsapplications/projection/v1/{po_url('PO-700002')}",
        content=b'{"TotalAmount": 7}',
        headers=ifs.headers(**{"Content-Type": "application/json;IEEE754Compatible=true"}),
    )
    assert numeric.status_code == 201 and numeric.json()["TotalAmount"] == 7, "a number is still accepted"
    garbage = ifs.http.patch(
        f"/main/ifsapplications/projection/v1/{po_url('PO-700003')}",
        content=b'{"TotalAmount": "12,5"}',
        headers=ifs.headers(**{"Content-Type": "application/json;IEEE754Compatible=true"}),
    )
    assert garbage.status_code == 400
