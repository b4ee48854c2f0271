"""Request bodies as a channel, a payment provider and a warehouse would send them."""

from __future__ import annotations

from typing import Any


def body(channel_order_id: str, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "channel": "shopee",
        "channel_order_id": channel_order_id,
        "customer": {"name": "Lim Wei", "email": "wei@example.sg", "language": "zh-CN"},
        "shipping_address": {
            "country": "SG",
            "city": "Singapore",
            "postal_code": "018956",
            "line1": "10 Bayfront Ave",
        },
        "lines": [
            {"sku": "CASE-IP15", "quantity": 2, "unit_price": "12.50"},
            {"sku": "USB-C-1M", "quantity": 1, "unit_price": "4.90"},
        ],
        "currency": "USD",
    }
    payload.update(overrides)
    return payload


PAYMENT = {"payment_id": "psp_123", "amount": "29.90", "currency": "USD", "method": "card"}
SHIPMENT = {"carrier": "SF Express", "tracking_number": "SF1234567890", "warehouse": "WH-SZ"}
