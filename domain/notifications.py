"""Customer notifications: which messages exist and what a message needs to be written."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from domain.models import Customer, Model, OrderLine


class NotificationKind(StrEnum):
    PAYMENT_REMINDER_1 = "payment_reminder_1"  # 1 h after placement: plain reminder
    PAYMENT_REMINDER_2 = "payment_reminder_2"  # 24 h: offer of help ("trouble paying?")
    PAYMENT_REMINDER_3 = "payment_reminder_3"  # 72 h: incentive (coupon or free shipping)
    ORDER_CANCELLED = "order_cancelled"
    ORDER_SHIPPED = "order_shipped"


PAYMENT_REMINDERS: tuple[NotificationKind, ...] = (
    NotificationKind.PAYMENT_REMINDER_1,
    NotificationKind.PAYMENT_REMINDER_2,
    NotificationKind.PAYMENT_REMINDER_3,
)


class Notify(Model):
    """Everything a customer message may mention; (order_id, key) is its idempotency key."""

    order_id: str
    kind: NotificationKind
    reference: str | None = None  # tells apart messages of one kind, e.g. each parcel's "shipped"
    customer: Customer
    channel_order_id: str
    lines: list[OrderLine]
    total: Decimal
    currency: str
    cancel_reason: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.reference}" if self.reference else self.kind.value
