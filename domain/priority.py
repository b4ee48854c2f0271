"""Order priority: who is served first when stock is scarce and whose activities run first.

Temporal task priority keys run 1 (first) to 5 (last), 3 being the default; an order's key comes from
points for value, customer tier, an urgent ship-by and a campaign, so the rule reads as a table.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain.models import Model, PlaceOrder

HIGH_VALUE = Decimal(200)  # in the order's currency: a seller sets thresholds for the currencies they sell in
VERY_HIGH_VALUE = Decimal(1000)
URGENT_SHIP_WITHIN = timedelta(hours=24)
CAMPAIGN_TAGS = frozenset({"flash-sale", "launch", "black-friday", "11-11", "prime-day"})


class Priority(Model):
    key: int  # 1 (served first) .. 5 (served last)
    points: int
    why: list[str]


def order_priority(order: PlaceOrder, ship_within: timedelta) -> Priority:
    points, why = 0, list[str]()
    if order.total >= VERY_HIGH_VALUE:
        points, why = points + 2, [*why, f"order value {order.total} {order.currency}"]
    elif order.total >= HIGH_VALUE:
        points, why = points + 1, [*why, f"order value {order.total} {order.currency}"]
    if order.customer.tier == "vip":
        points, why = points + 2, [*why, "VIP customer"]
    if ship_within <= URGENT_SHIP_WITHIN:
        points, why = points + 1, [*why, f"must ship within {ship_within}"]
    if order.campaign and order.campaign.lower() in CAMPAIGN_TAGS:
        points, why = points + 1, [*why, f"campaign {order.campaign}"]
    key = max(1, 3 - points) if points else 3
    if points == 0 and order.total < HIGH_VALUE / 4:
        key, why = 4, ["small standard order"]
    return Priority(key=key, points=points, why=why or ["standard order"])
