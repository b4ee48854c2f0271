"""WooCommerce topics and order statuses map to orderflow's channel events as the README table says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.channel_events import ChannelCancelled, ChannelOrder, ChannelStatus
from integrations.channels.base import ShopPolicy
from integrations.channels.woocommerce.mapping import map_event
from integrations.errors import PayloadError, UnsupportedTopic

PAYLOADS = Path(__file__).parent / "payloads" / "woocommerce"
SHOP = ShopPolicy(shop_id="woo-berlin")


def order_payload(**changes: Any) -> bytes:
    data = json.loads((PAYLOADS / "order_created.json").read_text())
    data.update(changes)
    return json.dumps(data).encode()


def test_order_created_reads_the_whole_order_exactly() -> None:
    event = map_event("order.created", order_payload(), SHOP)
    assert isinstance(event, ChannelOrder)
    assert (event.channel_order_id, event.name, event.status) == ("727", "#727", ChannelStatus.PAID)
    assert event.updated_at == datetime(2026, 3, 22, 16, 28, 2, tzinfo=UTC)
    assert (event.customer.channel_customer_id, event.customer.email) == ("26", "john.doe@example.com")
    address = event.address
    assert address is not None
    assert (address.recipient, address.company, address.line1, address.line2, address.city) == (
        "Jane Doe",
        "Doe GmbH",
        "Unter den Linden 5",
        "2. OG",
        "Berlin",
    )
    assert (address.province_code, address.postal_code, address.country) == ("BE", "10117", "DE")
    assert address.phone == "(555) 555-5555"  # the shipping phone is empty: the billing one is used
    single, variable = event.lines
    assert (single.sku, single.quantity, single.unit_price, single.price_after_discount) == (
        "WOO-SINGLE-1",
        2,
        Decimal("6.00"),
        Decimal("4.50"),
    )
    assert (variable.sku, variable.variant) == ("SHIP-IDEA/BLACK/M", "Black, M Test")
    money = event.money
    assert (money.currency, money.subtotal, money.shipping, money.tax, money.total) == (
        "EUR",
        Decimal("30.00"),
        Decimal("10.00"),
        Decimal("1.35"),
        Decimal("36.35"),
    )
    assert [(d.code, d.amount) for d in money.discounts] == [("spring5", Decimal("5.00"))]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", ChannelStatus.PENDING_PAYMENT),
        ("on-hold", ChannelStatus.PENDING_PAYMENT),
        ("processing", ChannelStatus.PAID),
        ("completed", ChannelStatus.FULFILLED),
        ("refunded", ChannelStatus.REFUNDED),
        ("failed", ChannelStatus.PAYMENT_FAILED),
    ],
)
def test_order_status_maps_to_orderflow_status(status: str, expected: ChannelStatus) -> None:
    event = map_event("order.updated", order_payload(status=status), SHOP)
    assert isinstance(event, ChannelOrder)
    assert event.status is expected


def test_cancelled_on_woocommerce_cancels() -> None:
    event = map_event("order.updated", order_payload(status="cancelled"), SHOP)
    assert isinstance(event, ChannelCancelled)
    assert (event.channel_order_id, event.reason) == ("727", "cancelled on WooCommerce")


def test_deleted_order_with_only_its_id_cancels_it() -> None:
    event = map_event("order.deleted", (PAYLOADS / "order_deleted.json").read_bytes(), SHOP)
    assert isinstance(event, ChannelCancelled)
    assert (event.channel_order_id, event.updated_at, event.order) == ("727", None, None)


def test_virtual_order_has_no_address() -> None:
    event = map_event("order.created", order_payload(shipping={"first_name": "", "address_1": ""}), SHOP)
    assert isinstance(event, ChannelOrder)
    assert event.address is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "wc-custom"}, "status"),
        ({"date_modified_gmt": None}, "date_modified_gmt"),
        ({"total": "abc"}, "total"),
        (
            {"shipping": {"first_name": "J", "address_1": "x", "city": "Berlin", "country": "ZZ"}},
            "shipping.country",
        ),
        (
            {"line_items": [{"id": 1, "name": "x", "quantity": 1.5, "subtotal": "1", "total": "1"}]},
            "line_items[0]",
        ),
    ],
)
def test_unreadable_payload_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        map_event("order.created", order_payload(**changes), SHOP)
    assert refused.value.field.startswith(field)


def test_other_topics_are_not_acted_on() -> None:
    with pytest.raises(UnsupportedTopic):
        map_event("product.updated", b"{}", SHOP)
