"""Which stage of its life an order is in, said once for the read model, the Web UI and the docs."""

from __future__ import annotations

from domain.models import OrderStatus

S = OrderStatus

# Paid but not every parcel has left: the ship-by deadline applies. An order in exception counts,
# since whatever went wrong (no stock, a failed shipment request) still stands between it and shipping.
AWAITING_SHIPMENT: frozenset[OrderStatus] = frozenset(
    {S.PAID, S.STOCK_LOCKED, S.PARTIALLY_SHIPPED, S.EXCEPTION}
)


def awaits_shipment(status: OrderStatus) -> bool:
    """True while the order's ship-by deadline applies (shown as ShipBy, listed by /orders/stuck)."""
    return status in AWAITING_SHIPMENT
