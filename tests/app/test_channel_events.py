"""A store's order as orderflow places it: every field the store sent lands in PlaceOrder, the total is
what the buyer pays, and what cannot make an order is named; stored headers keep no signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.channel_events import channel_payment_id, kept_headers, to_place_order
from app.errors import InvalidField
from domain.channel_events import ChannelOrder
from domain.models import Channel
from integrations.channels.base import ShopPolicy
from integrations.channels.shopify.mapping import map_event as shopify_event
from integrations.channels.woocommerce.mapping import map_event as woo_event

PAYLOADS = Path(__file__).parents[1] / "integrations" / "payloads"


def shopify(**changes: Any) -> ChannelOrder:
    data = json.loads((PAYLOADS / "shopify" / "orders_create.json").read_text())
    data.update(changes)
    event = shopify_event("orders/create", json.dumps(data).encode(), ShopPolicy("mugs"))
    assert isinstance(event, ChannelOrder)
    return event


def test_a_shopify_order_keeps_everything_the_store_sent_and_totals_what_the_buyer_pays() -> None:
    placed = to_place_order(shopify(), Channel.SHOPIFY)
    assert (placed.shop_id, placed.channel_order_id) == ("mugs", "820982911946154508")
    assert str(placed.total) == "429.94"
    assert str(placed.shipping) == "10.00"
    assert placed.customer.email == "jon@example.com"
    assert placed.customer.locale == "en-US"
    assert placed.customer.language == "en"
    assert [line.sku for line in placed.lines] == ["IPOD2008BLACK", "IPOD2008RED"]
    assert all(line.channel_line_id and line.title for line in placed.lines)
    # Shopify spreads the code's discount over the lines: it is taken off once, in the line prices.
    assert placed.discounts == []


def test_a_woocommerce_order_keeps_its_order_discount_and_address() -> None:
    body = (PAYLOADS / "woocommerce" / "order_created.json").read_bytes()
    event = woo_event("order.created", body, ShopPolicy("teas"))
    assert isinstance(event, ChannelOrder)
    placed = to_place_order(event, Channel.WOOCOMMERCE)
    assert str(placed.total) == "36.35"
    address = placed.shipping_address
    found = (address.city, address.line2, address.company, address.province)
    assert found == ("Berlin", "2. OG", "Doe GmbH", "BE")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": None, "customer": None, "contact_email": None}, "customer.email"),
        ({"shipping_address": None}, "shipping_address"),
    ],
)
def test_what_cannot_make_an_order_is_named(changes: dict[str, Any], field: str) -> None:
    event = shopify(**changes)
    with pytest.raises(InvalidField) as refused:
        to_place_order(event, Channel.SHOPIFY)
    assert refused.value.field == field


def test_stored_headers_keep_where_a_delivery_came_from_never_its_signature() -> None:
    kept = kept_headers(
        {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": "c2lnbmF0dXJl",
            "Stripe-Signature": "t=1,v1=ab",
            "Authorization": "Bearer of_x",
            "Content-Type": "application/json",
        }
    )
    assert kept == {"x-shopify-topic": "orders/create", "content-type": "application/json"}


def test_a_payment_id_names_the_shop_and_fits_the_payments_table() -> None:
    assert channel_payment_id("woo-berlin", "727") == "woo-berlin:727"
    assert channel_payment_id("woo-hamburg", "727") != channel_payment_id("woo-berlin", "727")
    long_shop, long_order = "s" * 64, "9" * 64
    hashed = channel_payment_id(long_shop, long_order)
    assert len(hashed) <= 100  # payments.payment_id, ConfirmPayment.payment_id
    assert hashed.startswith(f"{long_shop}:")
    assert hashed != channel_payment_id(long_shop, "8" * 64)
