"""POST /orders as stores send them (issue 10): one order per shop and order number, and the money a
store states (shipping, tax, discounts) is what the buyer pays and what a payment must equal."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from services.tables import OrderKey, OrderRow
from tests.support.factories import eventually
from tests.support.payloads import PAYMENT, body


async def woocommerce_shop(api: httpx.AsyncClient, shop_id: str) -> None:
    described = await api.put(
        f"/shops/{shop_id}",
        json={
            "channel": "woocommerce",
            "name": shop_id,
            "url": f"https://{shop_id}.example/",
            "currency": "EUR",
        },
    )
    assert described.status_code == 200, described.text


async def test_one_order_number_in_two_shops_is_two_orders_and_in_one_shop_one(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    await woocommerce_shop(api, "eu-store")
    await woocommerce_shop(api, "us-store")
    eu = await api.post("/orders", json=body("WC-1001", channel="woocommerce", shop_id="eu-store"))
    us = await api.post("/orders", json=body("WC-1001", channel="woocommerce", shop_id="us-store"))
    assert (eu.status_code, us.status_code) == (201, 201), (eu.text, us.text)
    assert eu.json()["order_id"] != us.json()["order_id"]
    assert (eu.json()["shop_id"], us.json()["shop_id"]) == ("eu-store", "us-store")

    again = await api.post("/orders", json=body("WC-1001", channel="woocommerce", shop_id="eu-store"))
    assert (again.status_code, again.json()["order_id"]) == (200, eu.json()["order_id"])

    # Naming no shop is the channel's default shop: a third order, found again the same way.
    unnamed = await api.post("/orders", json=body("WC-1001", channel="woocommerce"))
    assert (unnamed.status_code, unnamed.json()["shop_id"]) == (201, "woocommerce-default")
    named = await api.post(
        "/orders", json=body("WC-1001", channel="woocommerce", shop_id="woocommerce-default")
    )
    assert (named.status_code, named.json()["order_id"]) == (200, unnamed.json()["order_id"])

    def filed() -> dict[str, str | None]:  # the read model is written a moment after the answer
        with Session(engine) as session:
            rows = session.exec(select(OrderRow.order_id, OrderRow.shop_id)).all()
        return dict(rows) if len(rows) == 3 else {}

    assert await eventually(filed) == {
        eu.json()["order_id"]: "eu-store",
        us.json()["order_id"]: "us-store",
        unnamed.json()["order_id"]: "woocommerce-default",
    }

    refused = await api.post("/orders", json=body("WC-1002", channel="woocommerce", shop_id="EU Store"))
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["shop_id"]


async def test_a_payment_must_equal_what_the_buyer_pays_shipping_tax_and_discounts_included(
    api: httpx.AsyncClient,
) -> None:
    stated = {
        "lines": [
            {
                "sku": "CASE-IP15",
                "quantity": 2,
                "unit_price": "12.50",
                "discounted_unit_price": "11.25",
                "channel_line_id": "866550311766439020",
                "title": "Clear case",
                "variant": "iPhone 15",
            },
            {"sku": "USB-C-1M", "quantity": 1, "unit_price": "4.90"},
        ],
        "subtotal": "27.40",
        "discounts": [{"code": "WELCOME5", "amount": "5.00"}],
        "shipping": "4.95",
        "tax": "2.19",
        "total": "29.54",
    }
    created = await api.post("/orders", json=body("SG-MONEY-1", **stated))
    assert created.status_code == 201, created.text
    order = created.json()
    assert (order["subtotal"], order["shipping"], order["tax"], order["total"]) == (
        "27.40",
        "4.95",
        "2.19",
        "29.54",
    )
    assert order["discounts"] == [{"code": "WELCOME5", "amount": "5.00"}]
    assert order["lines"][0]["variant"] == "iPhone 15"

    # The lines' list prices are not what the buyer pays: refused with the total, the order unpaid.
    lines_only = await api.post(f"/orders/{order['order_id']}/payment", json=PAYMENT)
    assert lines_only.status_code == 409
    assert "does not match the order total 29.54 USD" in lines_only.json()["detail"]
    paid = await api.post(f"/orders/{order['order_id']}/payment", json={**PAYMENT, "amount": "29.54"})
    assert (paid.status_code, paid.json()["status"]) == (200, "stock_locked"), paid.text


async def test_a_total_that_does_not_add_up_is_a_422_saying_what_it_should_be_and_nothing_is_kept(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    wrong = await api.post("/orders", json=body("SG-MONEY-2", shipping="4.95", total="29.90"))
    assert wrong.status_code == 422
    [error] = wrong.json()["errors"]
    assert error["field"] == "total"
    assert "which is 34.85 USD" in error["message"]
    with Session(engine) as session:
        assert session.exec(select(OrderKey).where(OrderKey.channel_order_id == "SG-MONEY-2")).first() is None

    finer = await api.post("/orders", json=body("SG-MONEY-3", shipping="4.955"))
    assert finer.status_code == 422
    assert [e["field"] for e in finer.json()["errors"]] == ["shipping"]


async def test_an_order_for_a_shop_nobody_described_or_of_another_channel_is_refused(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    typo = await api.post("/orders", json=body("WC-2001", channel="woocommerce", shop_id="eu-stroe"))
    assert typo.status_code == 422
    [error] = typo.json()["errors"]
    assert error["field"] == "shop_id"
    assert "PUT /shops/eu-stroe" in error["message"]

    await woocommerce_shop(api, "eu-store")
    elsewhere = await api.post("/orders", json=body("SH-2001", channel="shopify", shop_id="eu-store"))
    assert elsewhere.status_code == 422
    assert "sells on woocommerce" in elsewhere.json()["errors"][0]["message"]
    with Session(engine) as session:  # nothing was claimed for either
        assert session.exec(select(OrderKey)).all() == []


async def test_skus_differing_only_in_case_in_one_order_are_refused_naming_the_line(
    api: httpx.AsyncClient,
) -> None:
    lines = [
        {"sku": "CASE-IP15", "quantity": 1, "unit_price": "12.50"},
        {"sku": "case-ip15", "quantity": 1, "unit_price": "12.50"},
    ]
    refused = await api.post("/orders", json=body("SG-CASE-1", lines=lines))

    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == "lines[1].sku"
    assert "differ only in case" in error["message"]


async def test_an_api_caller_cannot_claim_the_store_cancelled_already(api: httpx.AsyncClient) -> None:
    """origin "channel" skips the shop cancel and the Stripe refund: only signed webhooks may say it."""
    placed = await api.post("/orders", json=body("SG-ORIGIN-1"))
    order_id = placed.json()["order_id"]

    claimed = await api.post(f"/orders/{order_id}/cancel", json={"reason": "x", "origin": "channel"})
    assert claimed.status_code == 422
    assert claimed.json()["errors"][0]["field"] == "origin"
    assert (await api.get(f"/orders/{order_id}")).json()["status"] == "pending_payment"
