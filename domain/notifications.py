"""Customer notifications: which messages exist and what a message needs to be written."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from domain.models import Customer, Model, OrderLine


class NotificationKind(StrEnum):
    PAYMENT_REMINDER_1 = "payment_reminder_1"  # 1 h after placement: plain reminder
    PAYMENT_REMINDER_2 = "payment_reminder_2"  # 24 h: offer of help ("trouble paying?")
    PAYMENT_REMINDER_3 = "payment_reminder_3"  # 72 h: last call, naming the auto-cancel time
    ORDER_CANCELLED = "order_cancelled"
    ORDER_SHIPPED = "order_shipped"


class CancelKind(StrEnum):
    """Why an order was cancelled, as the buyer is told it (in their language): never the internal
    reason an operator or channel gave, which stays in the timeline and the audit trail."""

    PAYMENT_TIMEOUT = "payment_timeout"  # no payment by the deadline
    BUYER_REQUESTED = "buyer_requested"  # the channel's cancel: the buyer cancelled there
    SELLER_CANCELLED = "seller_cancelled"  # an operator cancelled
    OUT_OF_STOCK = "out_of_stock"  # an operator gave up on stock that did not come (or an unknown SKU)


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
    # Not rendered any more: kept so mails queued by orders started before still validate.
    cancel_reason: str | None = None
    cancel_kind: CancelKind | None = None
    customer_message: str | None = None  # an operator's or channel's words for the buyer, if given
    carrier: str | None = None
    tracking_number: str | None = None
    # The auto-cancel time an unpaid order's reminders name (None: mails queued before it was added).
    payment_due_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.reference}" if self.reference else self.kind.value
