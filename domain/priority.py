"""Order priority: who is served first when stock is scarce and whose activities run first.

Temporal task priority keys run 1 (first) to 5 (last), 3 being the default; an order's key comes from
points for value, customer tier, an urgent ship-by and a campaign, so the rule reads as a table.
Value thresholds are in one reporting currency (ORDERS_REPORTING_CURRENCY); an order in another
currency is converted with the rates in ORDERS_FX_RATES, so 1,000 JPY is not a big order.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # domain.models imports domain.policy, which carries PriorityRules
    from domain.models import PlaceOrder

HIGH_VALUE = Decimal(200)
VERY_HIGH_VALUE = Decimal(1000)
URGENT_SHIP_WITHIN = timedelta(hours=24)
CAMPAIGN_TAGS = ("flash-sale", "launch", "black-friday", "11-11", "prime-day")
CENTS = Decimal("0.01")


class PriorityRules(BaseModel):
    """Copied into each order with its policy when it is placed (ORDERS_* settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None: thresholds in the order's own currency, as for orders placed before reporting currencies.
    reporting_currency: str | None = None
    # 1 unit of the key's currency = this many reporting-currency units.
    fx_rates: dict[str, Decimal] = Field(default_factory=dict)
    high_value: Decimal = HIGH_VALUE
    very_high_value: Decimal = VERY_HIGH_VALUE
    campaign_tags: tuple[str, ...] = CAMPAIGN_TAGS  # lower case

    def in_reporting_currency(self, amount: Decimal, currency: str) -> Decimal | None:
        """The amount in the reporting currency; None when there is no rate for `currency`."""
        if self.reporting_currency is None or currency == self.reporting_currency:
            return amount
        rate = self.fx_rates.get(currency)
        return None if rate is None else amount * rate


class Priority(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: int  # 1 (served first) .. 5 (served last)
    points: int
    why: list[str]
    # Set when the order's value could not be judged (no exchange rate): the worker logs it.
    warning: str | None = None


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def order_priority(order: PlaceOrder, ship_within: timedelta, rules: PriorityRules | None = None) -> Priority:
    rules = rules or PriorityRules()
    value = rules.in_reporting_currency(order.total, order.currency)
    points, why, warning = 0, list[str](), None
    shown = f"order value {order.total} {order.currency}"
    if value is not None and order.currency != (rules.reporting_currency or order.currency):
        shown += f" (about {value.quantize(CENTS)} {rules.reporting_currency})"
    if value is None:
        warning = (
            f"no {rules.reporting_currency} exchange rate for {order.currency} in ORDERS_FX_RATES: "
            "the order's value does not count towards its priority"
        )
    elif value >= rules.very_high_value:
        points, why = points + 2, [*why, shown]
    elif value >= rules.high_value:
        points, why = points + 1, [*why, shown]
    if order.customer.tier == "vip":
        points, why = points + 2, [*why, "VIP customer"]
    if ship_within <= URGENT_SHIP_WITHIN:
        points, why = points + 1, [*why, f"must ship within {_hours(ship_within)}"]
    if order.campaign and order.campaign.lower() in rules.campaign_tags:
        points, why = points + 1, [*why, f"campaign {order.campaign}"]
    key = max(1, 3 - points) if points else 3
    if points == 0 and value is not None and value < rules.high_value / 4:
        key, why = 4, ["small standard order"]
    why = why or ["standard order"]
    return Priority(key=key, points=points, why=[*why, warning] if warning else why, warning=warning)
