"""WooCommerce webhook topics and order statuses -> domain.channel_events, as pure functions.

The payload is the REST v3 order (woocommerce.github.io/woocommerce-rest-api-docs/#order-properties):
amounts are strings in `currency`; line `subtotal` is before discounts and `total` after, both for
the whole line and without tax; times in `date_modified_gmt` are UTC without an offset.
order.deleted sends only `{"id": N}` (UNSURE whether a trashed order sends the full order instead:
both are read).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.channel_events import (
    STATUS_EFFECTS,
    ChannelAddress,
    ChannelCancelled,
    ChannelCustomer,
    ChannelEvent,
    ChannelLine,
    ChannelMoney,
    ChannelOrder,
    ChannelStatus,
    Discount,
)
from domain.codes import CURRENCY_EXPONENTS
from integrations.channels.base import ShopPolicy
from integrations.errors import PayloadError, UnsupportedTopic
from integrations.payloads import amount, build, load_json, need, text, timestamp

TOPICS = frozenset({"order.created", "order.updated", "order.deleted"})

ORDER_STATUS: dict[str, ChannelStatus] = {
    "pending": ChannelStatus.PENDING_PAYMENT,
    "on-hold": ChannelStatus.PENDING_PAYMENT,  # awaiting a bank transfer or cheque
    "processing": ChannelStatus.PAID,
    "completed": ChannelStatus.FULFILLED,
    "cancelled": ChannelStatus.CANCELLED,
    "refunded": ChannelStatus.REFUNDED,
    "failed": ChannelStatus.PAYMENT_FAILED,
}


def order_status(data: dict[str, Any]) -> ChannelStatus:
    status = text(need(data, "status"))
    try:
        return ORDER_STATUS[status]
    except KeyError:
        raise PayloadError(
            "status", f"{status!r} is not a WooCommerce order status orderflow knows"
        ) from None


def map_event(topic: str, raw_body: bytes, shop: ShopPolicy) -> ChannelEvent:
    if topic not in TOPICS:
        raise UnsupportedTopic(f"WooCommerce topic {topic!r} is not one orderflow subscribes to")
    data = load_json(raw_body)
    if topic == "order.deleted":
        order = read_order(data, shop.shop_id, ChannelStatus.CANCELLED) if "status" in data else None
        return build(
            ChannelCancelled,
            "",
            shop_id=shop.shop_id,
            channel_order_id=text(need(data, "id")),
            updated_at=order.updated_at if order else None,
            reason="deleted on WooCommerce",
            order=order,
        )
    order = read_order(data, shop.shop_id, order_status(data))
    if order.status is ChannelStatus.CANCELLED:
        return ChannelCancelled(
            shop_id=order.shop_id,
            channel_order_id=order.channel_order_id,
            updated_at=order.updated_at,
            reason="cancelled on WooCommerce",
            order=order,
        )
    return order


def read_order(data: dict[str, Any], shop_id: str, status: ChannelStatus) -> ChannelOrder:
    currency = text(need(data, "currency")).upper()
    if currency not in CURRENCY_EXPONENTS:
        raise PayloadError("currency", f"{currency!r} is not an ISO 4217 currency orderflow prices in")
    lines = tuple(_line(line, index, currency) for index, line in enumerate(need(data, "line_items")))
    billing = data.get("billing") or {}
    return build(
        ChannelOrder,
        "",
        shop_id=shop_id,
        channel_order_id=text(need(data, "id")),
        name=f"#{text(data.get('number'))}" if data.get("number") else "",
        updated_at=timestamp(f"{need(data, 'date_modified_gmt')}+00:00", "date_modified_gmt"),
        status=status,
        customer=build(
            ChannelCustomer,
            "billing.",
            channel_customer_id=text(data.get("customer_id")) if data.get("customer_id") else None,
            name=_name(billing),
            email=text(billing.get("email")),
        ),
        address=_address(data.get("shipping") or {}, billing),
        lines=lines,
        money=build(
            ChannelMoney,
            "",
            currency=currency,
            subtotal=sum((line.unit_price * line.quantity for line in lines), Decimal(0)),
            shipping=amount(data.get("shipping_total"), "shipping_total"),
            tax=amount(data.get("total_tax"), "total_tax"),
            taxes_included=bool(data.get("prices_include_tax")),
            discounts=tuple(
                build(
                    Discount,
                    "coupon_lines.",
                    code=text(item.get("code")),
                    amount=amount(item.get("discount"), "coupon_lines.discount"),
                )
                for item in data.get("coupon_lines") or []
            ),
            total=amount(need(data, "total"), "total"),
        ),
        stripe_payment_intent_id=_stripe_intent(data),
    )


def _stripe_intent(data: dict[str, Any]) -> str | None:
    """The WooCommerce Stripe gateway keeps the order's PaymentIntent in meta `_stripe_intent_id`."""
    for meta in data.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == "_stripe_intent_id" and meta.get("value"):
            return text(meta["value"])
    return None


def _name(part: dict[str, Any]) -> str:
    return " ".join(value for value in (text(part.get("first_name")), text(part.get("last_name"))) if value)


def _address(shipping: dict[str, Any], billing: dict[str, Any]) -> ChannelAddress | None:
    if not text(shipping.get("address_1")):
        return None  # virtual or downloadable goods: nothing to ship
    return build(
        ChannelAddress,
        "shipping.",
        recipient=_name(shipping),
        phone=text(shipping.get("phone")) or text(billing.get("phone")),
        company=text(shipping.get("company")),
        line1=text(shipping.get("address_1")),
        line2=text(shipping.get("address_2")),
        city=text(shipping.get("city")),
        province_code=text(shipping.get("state")),
        postal_code=text(shipping.get("postcode")),
        country=text(shipping.get("country")),
    )


def _line(line: dict[str, Any], index: int, currency: str) -> ChannelLine:
    where = f"line_items[{index}]."
    quantity = need(line, "quantity", where)
    if not isinstance(quantity, int) or quantity <= 0:
        raise PayloadError(f"{where}quantity", "must be a whole number above 0")
    step = Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency])
    before = amount(need(line, "subtotal", where), f"{where}subtotal") / quantity
    after = amount(need(line, "total", where), f"{where}total") / quantity
    return build(
        ChannelLine,
        where,
        channel_line_id=text(need(line, "id", where)),
        sku=text(line.get("sku")),
        title=text(line.get("name")),
        variant=", ".join(
            text(meta.get("display_value"))
            for meta in line.get("meta_data") or []
            if not text(meta.get("key")).startswith("_") and isinstance(meta.get("display_value"), str)
        )[:200],
        quantity=quantity,
        unit_price=before.quantize(step, rounding=ROUND_HALF_EVEN),
        price_after_discount=after.quantize(step, rounding=ROUND_HALF_EVEN),
    )


def status_table() -> tuple[tuple[str, str, str], ...]:
    """README rows (WooCommerce status, orderflow status, what orderflow does), from ORDER_STATUS."""
    rows = [(name, status.value, STATUS_EFFECTS[status]) for name, status in ORDER_STATUS.items()]
    rows.append(("(order.deleted)", ChannelStatus.CANCELLED.value, STATUS_EFFECTS[ChannelStatus.CANCELLED]))
    return tuple(rows)
