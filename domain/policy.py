"""Order timing policy: the deadlines an order lives by, fixed at placement and carried as data."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.priority import PriorityRules

MIN_PAYMENT_HOLD = timedelta(days=3)
MAX_PAYMENT_HOLD = timedelta(days=7)

# Unpaid-order reminders, measured from placement: plain reminder, offer of help, last call
# naming the auto-cancel time.
REMINDER_OFFSETS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=24),
    timedelta(hours=72),
)


class OrderPolicy(BaseModel):
    """Copied into each order when it is placed, so a later settings change never moves its deadlines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_hold: timedelta = timedelta(days=5)
    # "stock_pressure": 3-7 days from the stock of the order's items; "fixed": always payment_hold.
    hold_rule: Literal["stock_pressure", "fixed"] = "stock_pressure"
    hold_when_scarce: timedelta = MIN_PAYMENT_HOLD
    hold_when_ample: timedelta = MAX_PAYMENT_HOLD
    reserve_stock: bool = True
    ship_within: timedelta = timedelta(hours=48)
    confirm_window: timedelta = timedelta(days=7)
    reminder_offsets: tuple[timedelta, ...] = REMINDER_OFFSETS
    # Out of stock: look again after restock_check_every, doubling up to restock_check_max (stock
    # arriving wakes the order at once anyway; this is the fallback).
    restock_check_every: timedelta = timedelta(minutes=30)
    restock_check_max: timedelta = timedelta(hours=12)
    # A step failing for a reason a retry may fix is retried for this long, the order showing that it
    # waits; then it goes to exception for an operator.
    step_patience: timedelta = timedelta(hours=24)
    # Continue as new once the history has this many events (or when Temporal suggests it).
    history_limit: int = 10_000
    # How the order's priority is judged (value thresholds in a reporting currency, campaign tags).
    priority: PriorityRules = PriorityRules()


def payment_hold_for(policy: OrderPolicy, scarce: list[str], tight: list[str]) -> tuple[timedelta, str]:
    """How long an unpaid order may wait, and why.

    Under stock pressure an unpaid order should not sit on units a paying buyer could take: scarce
    items (at or under safety stock) get the short hold, comfortable stock the long one, the rest
    the standard payment_hold.
    """
    if policy.hold_rule == "fixed":
        return policy.payment_hold, "the shop's standard payment hold"
    if scarce:
        return policy.hold_when_scarce, f"stock of {', '.join(scarce)} is at or under safety stock"
    if tight:
        return policy.payment_hold, f"stock of {', '.join(tight)} is getting low"
    return policy.hold_when_ample, "stock of every item is ample"
