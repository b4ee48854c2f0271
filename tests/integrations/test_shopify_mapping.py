"""Shopify topics and financial statuses map to orderflow's channel events as the README table says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.channel_events import (
    ChannelCancelled,
    ChannelOrder,
    ChannelPaid,
    ChannelRefunded,
    ChannelStatus,
    ShopUninstalled,
)
from integrations.channels.base import ShopPolicy
from integrations.channels.shopify.mapping import map_event
from integrations.errors import PayloadError, UnsupportedTopic

PAYLOADS = Path(__file__).parent / "payloads" / "shopify"
SHOP = ShopPolicy(shop_id="super-toys")
AUTHORIZED_PAYS = ShopPolicy(shop_id="super-toys", authorized_counts_as_paid=True)


def order_payload(**changes: Any) -> bytes:
    data = json.loads((PAYLOADS / "orders_create.json").read_text())
    data.update(changes)
    return json.dumps(data).encode()


def test_orders_create_reads_the_whole_order_exactly() -> None:
    event = map_event("orders/create", order_payload(), SHOP)
    assert isinstance(event, ChannelOrder)
    assert (event.shop_id, event.channel_order_id, event.name) == (
        "super-toys",
        "820982911946154508",
        "#9999",
    )
    assert event.updated_at == datetime(2026, 3, 4, 14, 15, 2, tzinfo=UTC)
    assert event.status is ChannelStatus.PENDING_PAYMENT
    assert event.customer.channel_customer_id == "115310627314723954"
    assert (event.customer.email, event.customer.locale) == ("jon@example.com", "en-US")
    address = event.address
    assert address is not None
    assert (address.recipient, address.company, address.line1, address.line2) == (
        "Steve Shipper",
        "Shipping Company",
        "123 Shipping Street",
        "Suite 2",
    )
    assert (address.city, address.province_code, address.postal_code, address.country) == (
        "Shippington",
        "KY",
        "40003",
        "US",
    )
    first, second = event.lines
    assert (first.channel_line_id, first.sku, first.variant, first.quantity) == (
        "866550311766439020",
        "IPOD2008BLACK",
        "black",
        1,
    )
    assert (first.unit_price, first.price_after_discount) == (Decimal("199.00"), Decimal("189.00"))
    assert (second.quantity, second.price_after_discount) == (2, Decimal("104.50"))
    money = event.money
    assert (money.currency, money.subtotal, money.shipping, money.tax, money.total) == (
        "USD",
        Decimal("398.00"),
        Decimal("10.00"),
        Decimal("21.94"),
        Decimal("429.94"),
    )
    assert money.taxes_included is False
    assert [(d.code, d.amount) for d in money.discounts] == [("SPRING20", Decimal("20.00"))]
    assert money.subtotal + money.shipping + money.tax == money.total


@pytest.mark.parametrize(
    ("financial_status", "shop", "expected"),
    [
        ("pending", SHOP, ChannelStatus.PENDING_PAYMENT),
        ("authorized", SHOP, ChannelStatus.PENDING_PAYMENT),
        ("authorized", AUTHORIZED_PAYS, ChannelStatus.PAID),
        ("partially_paid", SHOP, ChannelStatus.PENDING_PAYMENT),
        ("paid", SHOP, ChannelStatus.PAID),
        ("partially_refunded", SHOP, ChannelStatus.PAID),
        ("refunded", SHOP, ChannelStatus.REFUNDED),
        ("voided", SHOP, ChannelStatus.CANCELLED),
    ],
)
def test_financial_status_maps_to_orderflow_status(
    financial_status: str, shop: ShopPolicy, expected: ChannelStatus
) -> None:
    event = map_event("orders/updated", order_payload(financial_status=financial_status), shop)
    assert isinstance(event, ChannelOrder)
    assert event.status is expected


def test_an_order_cancelled_on_shopify_is_cancelled_whatever_it_was_paid() -> None:
    body = order_payload(
        financial_status="paid", cancelled_at="2026-03-05T08:00:00-05:00", cancel_reason="customer"
    )
    updated = map_event("orders/updated", body, SHOP)
    assert isinstance(updated, ChannelOrder)
    assert updated.status is ChannelStatus.CANCELLED
    cancelled = map_event("orders/cancelled", body, SHOP)
    assert isinstance(cancelled, ChannelCancelled)
    assert cancelled.channel_order_id == "820982911946154508"
    assert cancelled.reason == "cancelled on Shopify (customer)"
    assert cancelled.order is not None


def test_orders_paid_carries_the_order_so_paid_before_created_can_create_it() -> None:
    event = map_event("orders/paid", order_payload(financial_status="paid"), SHOP)
    assert isinstance(event, ChannelPaid)
    assert event.order.status is ChannelStatus.PAID
    assert event.order.money.total == Decimal("429.94")


def test_refunds_create_counts_only_successful_refund_transactions() -> None:
    event = map_event("refunds/create", (PAYLOADS / "refunds_create.json").read_bytes(), SHOP)
    assert isinstance(event, ChannelRefunded)
    assert (event.channel_order_id, event.channel_refund_id) == ("820982911946154508", "890088186047892319")
    assert (event.amount, event.currency) == (Decimal("199.40"), "USD")
    assert event.restocked_lines == (("866550311766439020", 1),)
    assert event.updated_at == datetime(2026, 3, 6, 16, 0, tzinfo=UTC)


def test_app_uninstalled_marks_the_shop() -> None:
    event = map_event("app/uninstalled", (PAYLOADS / "app_uninstalled.json").read_bytes(), SHOP)
    assert isinstance(event, ShopUninstalled)
    assert event.shop_id == "super-toys"


def test_amounts_sent_as_json_numbers_stay_exact() -> None:
    body = order_payload().replace(b'"total_price": "429.94"', b'"total_price": 429.94')
    event = map_event("orders/create", body, SHOP)
    assert isinstance(event, ChannelOrder)
    assert event.money.total == Decimal("429.94")


def test_yen_order_has_no_decimals() -> None:
    body = order_payload(currency="JPY", subtotal_price="4000", total_tax="300", total_price="4300")
    event = map_event("orders/create", body, SHOP)
    assert isinstance(event, ChannelOrder)
    assert (event.money.currency, event.money.total, event.money.tax) == ("JPY", Decimal(4300), Decimal(300))
    with pytest.raises(PayloadError, match="more decimals than JPY allows"):
        map_event("orders/create", order_payload(currency="JPY", total_price="4300.50"), SHOP)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"financial_status": "mystery"}, "financial_status"),
        ({"currency": "XYZ"}, "currency"),
        ({"updated_at": "yesterday"}, "updated_at"),
        ({"updated_at": "2026-03-04T09:15:02"}, "updated_at"),
        ({"total_price": "12,50"}, "total_price"),
        ({"total_price": "-5.00"}, "total"),
        ({"total_price": "10.001"}, "total"),
        ({"line_items": [{"id": 1, "price": "1.00", "quantity": 0}]}, "line_items[0].quantity"),
        ({"id": None}, "id"),
    ],
)
def test_unreadable_payload_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        map_event("orders/create", order_payload(**changes), SHOP)
    assert refused.value.field.startswith(field)


def test_a_sku_written_in_fullwidth_is_the_same_sku() -> None:
    data = json.loads(order_payload())
    data["line_items"][0]["sku"] = (
        "\uff29\uff30\uff2f\uff242008BLACK\u200b"  # fullwidth IPOD, a zero-width space
    )
    event = map_event("orders/create", json.dumps(data).encode(), SHOP)
    assert isinstance(event, ChannelOrder)
    assert event.lines[0].sku == "IPOD2008BLACK"


def test_topics_orderflow_does_not_act_on_are_named() -> None:
    with pytest.raises(UnsupportedTopic, match="products/update"):
        map_event("products/update", b"{}", SHOP)


def test_not_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="body"):
        map_event("orders/create", b"<html>", SHOP)
