"""The HTTP API end to end: a real Temporal dev server, the in-process worker, a real database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.orders import OrderStore
from tests.api.test_inventory_api import app_of
from tests.support.factories import eventually
from tests.support.payloads import PAYMENT, SHIPMENT, body


async def test_an_order_goes_from_placed_to_completed_over_http(api: httpx.AsyncClient) -> None:
    created = await api.post("/orders", json=body("SG-1001"))
    assert created.status_code == 201, created.text
    order = created.json()
    order_id = order["order_id"]
    assert order["status"] == "pending_payment"
    assert order["total"] == "29.90"
    assert order["timeline"][0]["kind"] == "placed"

    again = await api.post("/orders", json=body("SG-1001"))
    assert again.status_code == 200
    assert again.json()["order_id"] == order_id

    paid = await api.post(f"/orders/{order_id}/payment", json=PAYMENT)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "stock_locked"
    duplicate = await api.post(f"/orders/{order_id}/payment", json=PAYMENT)
    assert duplicate.status_code == 200
    assert duplicate.json()["timeline"] == paid.json()["timeline"]

    stock = (await api.get("/inventory/WH-SZ/CASE-IP15")).json()
    assert (stock["on_hand"], stock["locked"], stock["available"]) == (10, 2, 8)

    shipped = await api.post(f"/orders/{order_id}/shipment", json=SHIPMENT)
    assert shipped.json()["status"] == "shipped"
    at = "2026-11-22T08:00:00+08:00"
    moving = await api.post(f"/orders/{order_id}/tracking", json={"status": "in_transit", "at": at})
    assert moving.json()["status"] == "in_transit"
    arrived = await api.post(f"/orders/{order_id}/tracking", json={"status": "delivered", "at": at})
    assert arrived.json()["status"] == "delivered"
    done = await api.post(f"/orders/{order_id}/confirm-receipt")
    assert done.status_code == 200
    assert done.json()["status"] == "completed"

    fetched = await api.get(f"/orders/{order_id}")
    assert fetched.json()["status"] == "completed"
    assert [e["kind"] for e in fetched.json()["timeline"]][-1] == "completed"

    async def completed_ids() -> list[str]:  # the list reads the read model, a moment behind
        listed = (await api.get("/orders", params={"status": "completed", "country": "SG"})).json()
        return [item["order_id"] for item in listed["items"]]

    assert order_id in await eventually(completed_ids)

    # the workflow is closed: a retried POST and a late duplicate payment still change nothing
    late = await api.post("/orders", json=body("SG-1001"))
    assert (late.status_code, late.json()["order_id"]) == (200, order_id)
    late_payment = await api.post(f"/orders/{order_id}/payment", json=PAYMENT)
    assert late_payment.status_code == 200
    cancel = await api.post(f"/orders/{order_id}/cancel", json={"reason": "changed mind"})
    assert cancel.status_code == 409
    assert cancel.json()["detail"] == "the order is completed"
    stock = (await api.get("/inventory/WH-SZ/CASE-IP15")).json()
    assert (stock["on_hand"], stock["locked"]) == (8, 0)


async def test_refusals_are_409_with_a_reason_and_leave_the_order_as_it_was(
    api: httpx.AsyncClient,
) -> None:
    order_id = (await api.post("/orders", json=body("SG-2001"))).json()["order_id"]
    early = await api.post(f"/orders/{order_id}/shipment", json=SHIPMENT)
    assert (early.status_code, early.json()) == (409, {"detail": "the order is not paid yet"})
    short = await api.post(f"/orders/{order_id}/payment", json={**PAYMENT, "amount": "19.90"})
    assert short.status_code == 409
    assert "does not match the order total 29.90 USD" in short.json()["detail"]
    assert (await api.get(f"/orders/{order_id}")).json()["status"] == "pending_payment"

    await api.post(f"/orders/{order_id}/payment", json=PAYMENT)
    wrong_wh = await api.post(f"/orders/{order_id}/shipment", json={**SHIPMENT, "warehouse": "WH-LA"})
    assert wrong_wh.status_code == 409
    assert wrong_wh.json()["detail"] == "stock for this order is locked in WH-SZ, not in WH-LA"
    await api.post(f"/orders/{order_id}/shipment", json=SHIPMENT)
    refused = await api.post(f"/orders/{order_id}/cancel", json={"reason": "too late"})
    assert refused.status_code == 409
    assert "already shipped" in refused.json()["detail"]
    assert (await api.get(f"/orders/{order_id}")).json()["status"] == "shipped"

    below = await api.put("/inventory/WH-SZ/CASE-IP15", json={"on_hand": 1})
    assert below.status_code == 200  # the shipped units already left on_hand
    other = (await api.post("/orders", json=body("SG-2002"))).json()["order_id"]
    await api.post(f"/orders/{other}/payment", json={**PAYMENT, "payment_id": "psp_other"})
    assert (await api.get(f"/orders/{other}")).json()["status"] == "exception"


async def test_cancel_before_shipment_releases_stock(api: httpx.AsyncClient) -> None:
    order_id = (await api.post("/orders", json=body("SG-3001"))).json()["order_id"]
    await api.post(f"/orders/{order_id}/payment", json=PAYMENT)
    cancelled = await api.post(f"/orders/{order_id}/cancel", json={"reason": "buyer request"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "buyer request"
    stock = (await api.get("/inventory/WH-SZ/CASE-IP15")).json()
    assert (stock["locked"], stock["available"]) == (0, 10)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "CASE-IP15", "quantity": 0, "unit_price": "1"}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "CASE-IP15", "quantity": 1, "unit_price": "-1"}]}, "lines[0].unit_price"),
        ({"channel": "myspace"}, "channel"),
        (
            {"shipping_address": {"country": "XX", "city": "A", "line1": "B"}},
            "shipping_address.country",
        ),
        ({"customer": {"name": "A", "email": "not-an-email"}}, "customer.email"),
    ],
)
async def test_invalid_orders_get_422_naming_the_field(
    api: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await api.post("/orders", json=body("SG-BAD", **overrides))
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert field in response.json()["detail"]
    listed = (await api.get("/orders", params={"channel": "shopee"})).json()
    assert all(item["channel_order_id"] != "SG-BAD" for item in listed["items"])


async def test_unknown_orders_and_bad_queries_are_4xx(api: httpx.AsyncClient) -> None:
    assert (await api.get("/orders/ord_nope")).status_code == 404
    assert (await api.post("/orders/ord_nope/payment", json=PAYMENT)).status_code == 404
    assert (await api.post("/orders/ord_nope/confirm-receipt")).status_code == 404
    assert (await api.get("/inventory/WH-SZ/NOPE")).status_code == 404
    assert (await api.get("/orders", params={"cursor": "garbage"})).status_code == 422
    assert (await api.get("/orders", params={"limit": 0})).status_code == 422
    assert (await api.get("/orders", params={"status": "lost"})).status_code == 422
    malformed = await api.post("/orders", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    negative = await api.put("/inventory/WH-SZ/CASE-IP15", json={"on_hand": -1})
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "on_hand"


async def test_lists_page_through_the_read_model(api: httpx.AsyncClient) -> None:
    ids = [
        (await api.post("/orders", json=body(f"SG-L{i}", channel="ebay"))).json()["order_id"]
        for i in range(5)
    ]
    store: OrderStore = app_of(api).state.store
    # the read model follows each order's workflow a moment later
    await eventually(lambda: len(store.list(channel="ebay", limit=10)[0]) == 5)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"channel": "ebay", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/orders", params=params)).json()
        seen += [item["order_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert seen == list(reversed(ids))
