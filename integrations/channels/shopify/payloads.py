"""A Shopify order as its webhooks send it (the REST Order resource), read into domain.channel_events.

Fields from shopify.dev/docs/api/admin-rest/latest/resources/order and the orders/create example in
shopify.dev/docs/api/webhooks (topic orders/create). Amounts are strings in the shop's currency
(`currency`); `presentment_currency` is what the buyer saw and is not used for money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.channel_events import (
    ChannelAddress,
    ChannelCustomer,
    ChannelLine,
    ChannelMoney,
    ChannelOrder,
    ChannelStatus,
    Discount,
)
from domain.codes import CURRENCY_EXPONENTS
from integrations.errors import PayloadError
from integrations.payloads import amount, build, need, text, timestamp


def read_order(data: dict[str, Any], shop_id: str, status: ChannelStatus) -> ChannelOrder:
    currency = text(need(data, "currency")).upper()
    if currency not in CURRENCY_EXPONENTS:
        raise PayloadError("currency", f"{currency!r} is not an ISO 4217 currency orderflow prices in")
    return build(
        ChannelOrder,
        "",
        shop_id=shop_id,
        channel_order_id=text(need(data, "id")),
        name=text(data.get("name")),
        updated_at=timestamp(need(data, "updated_at"), "updated_at"),
        status=status,
        customer=_customer(data),
        address=_address(data.get("shipping_address")),
        lines=tuple(_line(line, index, currency) for index, line in enumerate(need(data, "line_items"))),
        money=_money(data, currency),
    )


def _customer(data: dict[str, Any]) -> ChannelCustomer:
    customer = data.get("customer") or {}
    name = " ".join(
        part for part in (text(customer.get("first_name")), text(customer.get("last_name"))) if part
    )
    return build(
        ChannelCustomer,
        "customer.",
        channel_customer_id=text(customer.get("id")) or None,
        name=name,
        email=text(data.get("email") or customer.get("email")),
        locale=text(data.get("customer_locale")),
    )


def _address(address: dict[str, Any] | None) -> ChannelAddress | None:
    if not address:
        return None
    recipient = text(address.get("name")) or " ".join(
        part for part in (text(address.get("first_name")), text(address.get("last_name"))) if part
    )
    return build(
        ChannelAddress,
        "shipping_address.",
        recipient=recipient,
        phone=text(address.get("phone")),
        company=text(address.get("company")),
        line1=text(address.get("address1")),
        line2=text(address.get("address2")),
        city=text(address.get("city")),
        province_code=text(address.get("province_code")),
        postal_code=text(address.get("zip")),
        country=text(address.get("country_code")),
    )


def _line(line: dict[str, Any], index: int, currency: str) -> ChannelLine:
    where = f"line_items[{index}]."
    quantity = need(line, "quantity", where)
    price = amount(need(line, "price", where), f"{where}price")
    allocated = sum(
        (
            amount(item.get("amount"), f"{where}discount_allocations")
            for item in line.get("discount_allocations") or []
        ),
        Decimal(0),
    )
    discount = allocated or amount(line.get("total_discount"), f"{where}total_discount")
    return build(
        ChannelLine,
        where,
        channel_line_id=text(need(line, "id", where)),
        sku=text(line.get("sku")),
        title=text(line.get("title")) or text(line.get("name")),
        variant=text(line.get("variant_title")),
        quantity=quantity,
        unit_price=price,
        price_after_discount=per_unit_after(price, discount, quantity, currency),
    )


def per_unit_after(price: Decimal, line_discount: Decimal, quantity: int, currency: str) -> Decimal:
    """One unit's price once the line's discount is spread over its units, in the currency's digits."""
    if not isinstance(quantity, int) or quantity <= 0:
        return price
    step = Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency])
    return max(Decimal(0), (price - line_discount / quantity).quantize(step, rounding=ROUND_HALF_EVEN))


def _money(data: dict[str, Any], currency: str) -> ChannelMoney:
    shipping_set = (data.get("total_shipping_price_set") or {}).get("shop_money") or {}
    if shipping_set:
        shipping = amount(shipping_set.get("amount"), "total_shipping_price_set.shop_money.amount")
    else:
        shipping = sum(
            (amount(item.get("price"), "shipping_lines.price") for item in data.get("shipping_lines") or []),
            Decimal(0),
        )
    return build(
        ChannelMoney,
        "",
        currency=currency,
        subtotal=amount(data.get("subtotal_price"), "subtotal_price"),
        shipping=shipping,
        tax=amount(data.get("total_tax"), "total_tax"),
        taxes_included=bool(data.get("taxes_included")),
        discounts=tuple(
            build(
                Discount,
                "discount_codes.",
                code=text(item.get("code")),
                amount=amount(item.get("amount"), "discount_codes.amount"),
            )
            for item in data.get("discount_codes") or []
        ),
        total=amount(need(data, "total_price"), "total_price"),
    )
