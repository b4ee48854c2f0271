"""Order types shared by the HTTP API, the workflow and the activities: commands, views, statuses."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from domain.codes import COUNTRIES, CURRENCY_EXPONENTS
from domain.identifiers import Identifier, Sku, sku_key
from domain.policy import OrderPolicy


def _without_nul(value: Any, where: str = "") -> None:
    """PostgreSQL cannot store NUL in text: refuse it at the door (422), never as a 500 later."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where or 'text'}: must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _without_nul(key, where)
            _without_nul(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _without_nul(item, f"{where}[{index}]")


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        _without_nul(data)
        return data


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    STOCK_LOCKED = "stock_locked"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXCEPTION = "exception"


TERMINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED})


class Channel(StrEnum):
    SHOPIFY = "shopify"
    AMAZON = "amazon"
    EBAY = "ebay"
    SHOPEE = "shopee"
    ALIEXPRESS = "aliexpress"
    WOOCOMMERCE = "woocommerce"
    MANUAL = "manual"


def _country(code: str) -> str:
    if code not in COUNTRIES:
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _currency(code: str) -> str:
    if code not in CURRENCY_EXPONENTS:
        raise ValueError(f"'{code}' is not a supported ISO 4217 currency code")
    return code


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CountryCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True), AfterValidator(_country)
]
CurrencyCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True), AfterValidator(_currency)
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]
MAX_ORDER_TOTAL = Decimal(10) ** 12  # what the database's NUMERIC(16, 4) money columns hold
# An amount fits those columns: under 10^12, at most 4 decimal places (a currency allows fewer).
Money = Annotated[
    Decimal, Field(ge=0, lt=MAX_ORDER_TOTAL, max_digits=16, decimal_places=4, allow_inf_nan=False)
]


def minor_digits(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class Customer(Model):
    name: Text
    email: Email
    language: Language = "en"
    tier: Literal["standard", "vip"] = "standard"


class Address(Model):
    country: CountryCode
    city: Text
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] = ""
    line1: Text


class OrderLine(Model):
    sku: Sku
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Money


class PlaceOrder(Model):
    """A new order as a channel hands it over (POST /orders)."""

    channel: Channel
    # Normalised (domain.identifiers): NFC, NFD, fullwidth and zero-width variants are one order.
    channel_order_id: Annotated[Identifier, StringConstraints(min_length=1, max_length=100)]
    customer: Customer
    shipping_address: Address
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]
    currency: CurrencyCode
    campaign: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None

    @model_validator(mode="after")
    def _lines_are_consistent(self) -> PlaceOrder:
        seen: dict[str, str] = {}  # sku_key -> the SKU as first written
        for index, line in enumerate(self.lines):
            first = seen.get(sku_key(line.sku))
            if first == line.sku:
                raise ValueError(f"lines[{index}].sku: '{line.sku}' appears twice; merge the lines")
            if first is not None:
                raise ValueError(
                    f"lines[{index}].sku: '{line.sku}' and '{first}' differ only in case, which makes "
                    "them one item (SKUs are compared without case); write it one way and merge the lines"
                )
            seen[sku_key(line.sku)] = line.sku
            if decimal_places(line.unit_price) > minor_digits(self.currency):
                raise ValueError(
                    f"lines[{index}].unit_price: {line.unit_price} has more decimals than "
                    f"{self.currency} allows ({minor_digits(self.currency)})"
                )
        if self.total >= MAX_ORDER_TOTAL:
            raise ValueError(f"lines: the order total {self.total} is not below {MAX_ORDER_TOTAL:,}")
        return self

    @property
    def total(self) -> Decimal:
        places = Decimal(1).scaleb(-minor_digits(self.currency))
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal(0)).quantize(places)


class PartLine(Model):
    line_no: Annotated[int, Field(ge=0)]  # index in the order's lines
    sku: Sku
    quantity: Annotated[int, Field(gt=0)]


class Part(Model):
    """One shipment of the order, tracked on its own."""

    warehouse: str
    lines: list[PartLine]


class ConfirmPayment(Model):
    payment_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    amount: Money
    currency: CurrencyCode
    method: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class ConfirmShipment(Model):
    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    tracking_number: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9-]{4,40}$")]
    warehouse: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class TrackingUpdate(Model):
    status: Literal["in_transit", "delivered"]
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,40}$")] | None = None
    at: AwareDatetime
    detail: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ConfirmReceipt(Model):
    pass


class RestockCheck(Model):
    """Sent to an out-of-stock order when its stock may have arrived."""


# What the buyer is told about a cancellation instead of the stock text for its kind; never the
# internal reason (which stays in the timeline and audit). Stored in the outbox and audit params.
CustomerMessage = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CancelOrder(Model):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    customer_message: CustomerMessage | None = None


class TimelineEvent(Model):
    at: datetime
    kind: str
    detail: str = ""


class PaymentInfo(Model):
    payment_id: str
    amount: Decimal
    currency: str
    method: str
    paid_at: datetime


class ShipmentView(Model):
    """One parcel of the order: the lines one warehouse ships, and where that parcel is."""

    warehouse: str
    lines: list[PartLine]
    status: Literal["locked", "requested", "shipped", "in_transit", "delivered", "withdrawn"]
    ship_by: datetime | None = None
    late: bool = False  # still unshipped when its ship-by passed
    carrier: str | None = None
    tracking_number: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


class PendingCommand(Model):
    """A command the order accepted but has not finished: its step is still running or retrying."""

    command: str
    accepted_at: datetime
    waiting_on: str | None = None  # the step it waits for, e.g. "record refund"


class OrderView(Model):
    """What a user sees of an order; also the projection written to the read model."""

    order_id: str
    channel: Channel
    channel_order_id: str
    status: OrderStatus
    customer: Customer
    shipping_address: Address
    lines: list[OrderLine]
    total: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime
    warehouse: str | None = None  # where it ships from; "WH-SZ+WH-LA" when split
    payment: PaymentInfo | None = None
    shipments: list[ShipmentView] = []
    priority: int = 3
    priority_why: list[str] = []
    hold_why: str | None = None
    payment_due_at: datetime | None = None
    ship_by: datetime | None = None
    confirm_by: datetime | None = None
    ship_late: bool = False
    shipped_while_held: bool = False  # a parcel left although the order was on hold
    reminders_sent: int = 0
    cancel_reason: str | None = None
    exception_reason: str | None = None
    # What an operator can do about the exception, in words: "retry: ...", "cancel: ...".
    suggested_actions: list[str] = []
    status_since: datetime | None = None
    on_hold: bool = False
    held_since: datetime | None = None
    hold_reason: str | None = None
    waiting_for_restock: bool = False
    # A step that has been running or retrying for a while: what it is and since when.
    waiting_on: str | None = None
    waiting_since: datetime | None = None
    # Commands accepted but not yet carried out (the update answered before its step finished).
    pending: list[PendingCommand] = []
    timeline: list[TimelineEvent] = []


class CarriedNotification(Model):
    """A customer message not yet confirmed sent when the order continued as new: sent again there
    (the outbox makes the second send a no-op when the first one got through)."""

    kind: str
    warehouse: str | None = None  # the parcel a "shipped" message is about


class OrderState(Model):
    """Everything OrderWorkflow keeps (workflows/state.py's LiveOrder), carried into the next run when
    it continues as new. Running orders carry this shape: add fields with defaults, rename none."""

    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    status_since: datetime
    timeline: list[TimelineEvent]
    timers: dict[str, datetime]
    payment: PaymentInfo | None = None
    parcels: list[ShipmentView] = []
    lock_generation: int = 0
    payment_due_at: datetime | None = None
    hold_why: str | None = None
    ship_by: datetime | None = None
    confirm_by: datetime | None = None
    ship_late: bool = False
    shipped_while_held: bool = False
    reminders_sent: int = 0
    cancel_reason: str | None = None
    cancel_kind: str | None = None
    customer_message: str | None = None
    exception_reason: str | None = None
    unknown_skus: list[str] = []
    waiting_for_restock: bool = False
    restock_every: timedelta | None = None
    held_since: datetime | None = None
    hold_reason: str | None = None
    failed_in: OrderStatus | None = None
    cancel_pending: str | None = None
    notifications: list[CarriedNotification] = []
    runs: int = 1


class StartOrder(Model):
    """Workflow input: the order, its id and the timing policy in force when it was placed; `carried`
    is the state of the previous run when the order continued as new."""

    order_id: str
    order: PlaceOrder
    policy: OrderPolicy = OrderPolicy()
    carried: OrderState | None = None
