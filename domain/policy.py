"""Order timing policy: the deadlines an order lives by, fixed at placement and carried as data."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

MIN_PAYMENT_HOLD = timedelta(days=3)
MAX_PAYMENT_HOLD = timedelta(days=7)

# Unpaid-order reminders, measured from placement: plain reminder, offer of help, incentive.
REMINDER_OFFSETS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=24),
    timedelta(hours=72),
)


class OrderPolicy(BaseModel):
    """Copied into each order when it is placed, so a later settings change never moves its deadlines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_hold: timedelta = timedelta(days=5)
    ship_within: timedelta = timedelta(hours=48)
    confirm_window: timedelta = timedelta(days=7)
    reminder_offsets: tuple[timedelta, ...] = REMINDER_OFFSETS
    restock_check_every: timedelta = timedelta(minutes=30)
