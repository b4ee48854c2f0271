"""Shopify webhook topics and financial statuses -> domain.channel_events, as pure functions.

Topics from shopify.dev/docs/api/webhooks (orders/create, orders/paid, orders/updated, orders/cancelled,
refunds/create, app/uninstalled); financial_status values from the REST Order resource (pending,
authorized, partially_paid, paid, partially_refunded, refunded, voided). An order with `cancelled_at`
set is cancelled whatever its financial_status says.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.channel_events import (
    STATUS_EFFECTS,
    ChannelCancelled,
    ChannelEvent,
    ChannelPaid,
    ChannelRefunded,
    ChannelStatus,
    ShopUninstalled,
)
from integrations.channels.base import ShopPolicy
from integrations.channels.shopify.payloads import read_order
from integrations.errors import PayloadError, UnsupportedTopic
from integrations.payloads import amount, build, load_json, need, text, timestamp

TOPICS = frozenset(
    {
        "orders/create",
        "orders/paid",
        "orders/updated",
        "orders/cancelled",
        "refunds/create",
        "app/uninstalled",
    }
)

FINANCIAL_STATUS: dict[str, ChannelStatus] = {
    "pending": ChannelStatus.PENDING_PAYMENT,
    "partially_paid": ChannelStatus.PENDING_PAYMENT,
    "paid": ChannelStatus.PAID,
    "partially_refunded": ChannelStatus.PAID,  # the refund itself arrives as refunds/create
    "refunded": ChannelStatus.REFUNDED,
    "voided": ChannelStatus.CANCELLED,
}
AUTHORIZED = "authorized"  # paid only when the shop counts an authorised payment as paid


def order_status(data: dict[str, Any], shop: ShopPolicy) -> ChannelStatus:
    """What a Shopify order's financial_status (and cancelled_at) means to orderflow."""
    if data.get("cancelled_at"):
        return ChannelStatus.CANCELLED
    financial = text(need(data, "financial_status"))
    if financial == AUTHORIZED:
        return ChannelStatus.PAID if shop.authorized_counts_as_paid else ChannelStatus.PENDING_PAYMENT
    try:
        return FINANCIAL_STATUS[financial]
    except KeyError:
        raise PayloadError("financial_status", f"{financial!r} is not a Shopify financial status") from None


def map_event(topic: str, raw_body: bytes, shop: ShopPolicy) -> ChannelEvent:
    """The domain event a verified delivery of `topic` stands for."""
    if topic not in TOPICS:
        raise UnsupportedTopic(f"Shopify topic {topic!r} is not one orderflow subscribes to")
    data = load_json(raw_body)
    if topic == "app/uninstalled":
        return build(
            ShopUninstalled,
            "",
            shop_id=shop.shop_id,
            updated_at=timestamp(need(data, "updated_at"), "updated_at"),
        )
    if topic == "refunds/create":
        return _refund(data, shop)
    if topic == "orders/cancelled":
        order = read_order(data, shop.shop_id, ChannelStatus.CANCELLED)
        return ChannelCancelled(
            shop_id=order.shop_id,
            channel_order_id=order.channel_order_id,
            updated_at=order.updated_at,
            reason=f"cancelled on Shopify ({text(data.get('cancel_reason')) or 'no reason given'})",
            order=order,
        )
    order = read_order(data, shop.shop_id, order_status(data, shop))
    if topic == "orders/paid":
        return ChannelPaid(order=order.model_copy(update={"status": ChannelStatus.PAID}))
    return order


def _refund(data: dict[str, Any], shop: ShopPolicy) -> ChannelRefunded:
    """refunds/create: the money is the sum of its successful refund transactions."""
    transactions = [
        item
        for item in data.get("transactions") or []
        if item.get("kind") == "refund" and item.get("status") in ("success", None)
    ]
    currencies = {text(item.get("currency")).upper() for item in transactions if item.get("currency")}
    if len(currencies) > 1:
        raise PayloadError("transactions.currency", f"refund in several currencies: {sorted(currencies)}")
    return build(
        ChannelRefunded,
        "",
        shop_id=shop.shop_id,
        channel_order_id=text(need(data, "order_id")),
        channel_refund_id=text(need(data, "id")),
        updated_at=timestamp(need(data, "created_at"), "created_at"),
        amount=sum((amount(item.get("amount"), "transactions.amount") for item in transactions), Decimal(0)),
        currency=currencies.pop() if currencies else text(need(data, "currency")),
        restocked_lines=tuple(
            (text(item.get("line_item_id")), _count(item.get("quantity"), "refund_line_items.quantity"))
            for item in data.get("refund_line_items") or []
            if item.get("restock_type") not in (None, "no_restock")
        ),
        note=text(data.get("note"))[:200],
    )


# Where a row's effect differs from the status's usual one (STATUS_EFFECTS), in the README's words.
ROW_NOTES = {
    "partially_refunded": "stays paid; the refund itself arrives as refunds/create and is recorded",
}


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(field, "must be a whole number of at least 0")
    return value


def status_table() -> tuple[tuple[str, str, str], ...]:
    """README rows (financial_status, orderflow status, what orderflow does), from the tables above."""
    rows = [
        (name, status.value, ROW_NOTES.get(name, STATUS_EFFECTS[status]))
        for name, status in FINANCIAL_STATUS.items()
    ]
    rows.insert(
        1,
        (
            AUTHORIZED,
            f"{ChannelStatus.PAID.value} or {ChannelStatus.PENDING_PAYMENT.value}",
            "paid when the shop's `authorized_counts_as_paid` is on, otherwise it waits for payment",
        ),
    )
    rows.append(
        ("any, with cancelled_at set", ChannelStatus.CANCELLED.value, STATUS_EFFECTS[ChannelStatus.CANCELLED])
    )
    return tuple(rows)
