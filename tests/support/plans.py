"""The orders a reliability test drives: seeded random scenarios, and what each one should end as.

Unpaid orders: the dev server runs in real time, so an order with the standard policy waits an hour
for its first reminder. The "payment timeout" orders therefore carry a compressed timing policy in
their workflow input (reminders at 3 s, 8 s and 13 s, hold 20 s): the same workflow code, timers and
notification activity as in production, only shorter offsets. Likewise the "auto complete" orders
carry a 6 s confirmation window. Every other order has the standard policy (fixed 5-day hold).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from domain.models import (
    Address,
    Channel,
    ConfirmPayment,
    Customer,
    OrderLine,
    OrderStatus,
    PlaceOrder,
)
from domain.policy import OrderPolicy
from tests.support.temporal import make_settings

WAREHOUSE = "WH-SZ"
ON_HAND = 400
PRICES = {"RL-CASE": Decimal("12.50"), "RL-CABLE": Decimal("4.90"), "RL-CHARGER": Decimal("19.90")}


STANDARD = make_settings().order_policy()  # fixed 5-day hold, reminders at 1 h / 24 h / 72 h
FAST_UNPAID = STANDARD.model_copy(
    update={
        "payment_hold": timedelta(seconds=20),
        "reminder_offsets": (timedelta(seconds=3), timedelta(seconds=8), timedelta(seconds=13)),
    }
)
FAST_CONFIRM = STANDARD.model_copy(update={"confirm_window": timedelta(seconds=6)})
REMINDERS = ("payment_reminder_1", "payment_reminder_2", "payment_reminder_3")


class Scenario(StrEnum):
    COMPLETE = "complete"  # pay, ship, in transit, delivered, buyer confirms
    AUTO_COMPLETE = "auto_complete"  # pay, ship, delivered, the confirmation window ends
    PAYMENT_TIMEOUT = "payment_timeout"  # never paid: 3 reminders, then cancelled
    CANCEL_UNPAID = "cancel_unpaid"  # the buyer cancels on the channel before paying
    CANCEL_PAID = "cancel_paid"  # paid and locked, then cancelled on the channel: refund
    OPERATOR_CANCEL_UNPAID = "operator_cancel_unpaid"
    OPERATOR_CANCEL_PAID = "operator_cancel_paid"


SHIPS = {Scenario.COMPLETE, Scenario.AUTO_COMPLETE}
PAYS = SHIPS | {Scenario.CANCEL_PAID, Scenario.OPERATOR_CANCEL_PAID}
REFUNDS = {Scenario.CANCEL_PAID, Scenario.OPERATOR_CANCEL_PAID}


@dataclass
class Plan:
    tag: str
    number: int
    scenario: Scenario
    placed: PlaceOrder
    policy: OrderPolicy
    start_after: float
    think: list[float]

    @property
    def order_id(self) -> str:
        return f"ord_{self.tag}{self.number:03d}"

    @property
    def workflow_id(self) -> str:
        return f"order-{self.order_id}"

    @property
    def payment(self) -> ConfirmPayment:
        return ConfirmPayment(
            payment_id=f"pay_{self.order_id}", amount=self.placed.total, currency="USD", method="card"
        )

    @property
    def expected_status(self) -> OrderStatus:
        return OrderStatus.COMPLETED if self.scenario in SHIPS else OrderStatus.CANCELLED

    @property
    def expected_notifications(self) -> set[str]:
        if self.scenario in SHIPS:
            return {"order_shipped"}
        if self.scenario == Scenario.PAYMENT_TIMEOUT:
            return {*REMINDERS, "order_cancelled"}
        return {"order_cancelled"}


def make_plans(rng: random.Random, mix: Mapping[Scenario, int], tag: str, spread: float) -> list[Plan]:
    """Orders of the given scenarios in a seeded random order, placed over `spread` seconds."""
    scenarios = [scenario for scenario, count in mix.items() for _ in range(count)]
    rng.shuffle(scenarios)
    plans = []
    for number, scenario in enumerate(scenarios):
        skus = rng.sample(sorted(PRICES), rng.randint(1, 2))
        placed = PlaceOrder(
            channel=rng.choice([Channel.SHOPIFY, Channel.AMAZON, Channel.EBAY]),
            channel_order_id=f"{tag}-{number:03d}",
            customer=Customer(name=f"Buyer {number}", email=f"buyer{number}@example.com"),
            shipping_address=Address(
                country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"
            ),
            lines=[OrderLine(sku=sku, quantity=rng.randint(1, 3), unit_price=PRICES[sku]) for sku in skus],
            currency="USD",
        )
        policy = {Scenario.PAYMENT_TIMEOUT: FAST_UNPAID, Scenario.AUTO_COMPLETE: FAST_CONFIRM}.get(
            scenario, STANDARD
        )
        think = [rng.uniform(0.1, 1.5) for _ in range(6)]
        plans.append(Plan(tag, number, scenario, placed, policy, rng.uniform(0.0, spread), think))
    return plans
