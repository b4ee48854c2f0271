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
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from domain.codes import COUNTRIES, CURRENCY_EXPONENTS
from domain.identifiers import Identifier, Sku, sku_key
from domain.money import Totals, checked_total, excess_decimals
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
# A carrier's tracking number as carriers print them: what parcels are found by (shipments, tracking).
TrackingNumber = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9-]{4,40}$")]
MAX_ORDER_TOTAL = Decimal(10) ** 12  # what the database's NUMERIC(16, 4) money columns hold
# An amount fits those columns: under 10^12, at most 4 decimal places (a currency allows fewer).
Money = Annotated[
    Decimal, Field(ge=0, lt=MAX_ORDER_TOTAL, max_digits=16, decimal_places=4, allow_inf_nan=False)
]


# A shop (domain.shops): orders name the one they came from; none named is the channel's default shop.
SHOP_ID_MAX_LENGTH = 64
SHOP_ID_PATTERN = rf"^[a-z0-9][a-z0-9_-]{{0,{SHOP_ID_MAX_LENGTH - 1}}}$"
ShopId = Annotated[str, StringConstraints(pattern=SHOP_ID_PATTERN)]


def default_shop_id(channel: str) -> str:
    """The shop that orders of `channel` belong to when nobody said which (orders placed before shops)."""
    return f"{channel}-default"


# What a channel calls its customer or an order line ("gid://shopify/LineItem/1", "17"): normalised
# like every identifier; 64 characters, as domain.channel_events accepts them.
ChannelRef = Annotated[Identifier, StringConstraints(min_length=1, max_length=64)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
# State or province code as stores send it: "CA", "ON", "NSW", "BY", "13".
Province = Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)]


def _no_blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# A locale as stores send it: "en", "en-US", "zh-Hant-TW", WordPress's "de_DE_formal"; "" means unknown.
# Shown only, never parsed: any tag of letters, digits, "-" and "_" is kept, so an odd one from a store
# cannot keep its order out.
Locale = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,35}$")]


def minor_digits(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]


class Customer(Model):
    name: Text
    email: Email
    language: Language = "en"
    tier: Literal["standard", "vip"] = "standard"
    channel_customer_id: ChannelRef | None = None  # the store's id of the buyer
    locale: Annotated[Locale | None, BeforeValidator(_no_blank)] = None  # as the store has it: "en-US"


class Address(Model):
    country: CountryCode
    city: Text
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] = ""
    line1: Text
    recipient: OptionalText = ""  # who the parcel is addressed to, when not the customer
    company: OptionalText = ""
    line2: OptionalText = ""
    province: Province = ""  # state or province code
    phone: Phone = ""


class OrderLine(Model):
    sku: Sku
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Money
    channel_line_id: ChannelRef | None = None  # the store's id of the line, to report fulfilment by
    title: OptionalText = ""  # "Organic cotton tee"
    variant: OptionalText = ""  # "Red / M"
    # What the buyer pays for one after the line's discounts; None: the unit price.
    discounted_unit_price: Money | None = None

    @model_validator(mode="after")
    def _discount_lowers_the_price(self) -> OrderLine:
        if self.discounted_unit_price is not None and self.discounted_unit_price > self.unit_price:
            raise ValueError(
                f"discounted_unit_price: {self.discounted_unit_price} is more than the unit_price "
                f"{self.unit_price}; send the price after discount, at most the unit price"
            )
        return self

    @property
    def price_paid(self) -> Decimal:
        """What the buyer pays for one unit."""
        return self.unit_price if self.discounted_unit_price is None else self.discounted_unit_price


class Discount(Model):
    """An order-level discount: its code ("" when the store applied it without one) and amount off."""

    code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    amount: Money


# PlaceOrder.total when the channel left it out, until _lines_are_consistent derives it. Not a default
# factory reading the other fields: pydantic would then report `total` too whenever another field is
# invalid ("default_factory_not_called"), naming a field the sender got right.
_UNSTATED = Decimal(-1)


def _hide_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _totals(data: dict[str, Any], *, stated_total: Decimal | None) -> Totals:
    return Totals(
        currency=data["currency"],
        lines=tuple((line.price_paid, line.quantity) for line in data["lines"]),
        discounts=tuple(discount.amount for discount in data.get("discounts", ())),
        shipping=data.get("shipping", Decimal(0)),
        tax=data.get("tax", Decimal(0)),
        taxes_included=data.get("taxes_included", False),
        subtotal=data.get("subtotal"),
        total=stated_total,
    )


def lines_differing_only_in_case(lines: list[OrderLine]) -> tuple[str, str] | None:
    """(field, message) for the first line whose SKU differs from an earlier one only in case, which
    makes them one item (SKUs are compared without case); None when there is none. Checked where an
    order enters (app/), not in PlaceOrder: running orders re-validate their input on every replay."""
    seen: dict[str, str] = {}  # sku_key -> the SKU as first written
    for index, line in enumerate(lines):
        first = seen.setdefault(sku_key(line.sku), line.sku)
        if first != line.sku:
            return (
                f"lines[{index}].sku",
                f"'{line.sku}' and '{first}' differ only in case, which makes them one item (SKUs are "
                "compared without case); write it one way and merge the lines",
            )
    return None


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
    # The shop the order came from (PUT /shops); None: the channel's default shop, "<channel>-default".
    shop_id: ShopId | None = None
    # Money as the store states it (domain.money). Left out: no shipping, tax or order discount, and
    # the total is the lines' sum, as before these fields existed.
    subtotal: Money | None = None  # the lines' prices after discount times their quantities
    discounts: Annotated[list[Discount], Field(max_length=50)] = []
    shipping: Money = Decimal(0)
    tax: Money = Decimal(0)
    taxes_included: bool = False  # prices already include the tax: it is not added again
    # What the buyer pays, and what a payment must equal: subtotal - discounts + shipping + tax.
    total: Money = Field(
        _UNSTATED,
        description="what the buyer pays; left out: derived from the lines and the charges above",
        json_schema_extra=_hide_default,
    )

    @property
    def shop(self) -> str:
        """The shop the order belongs to: the one named, else the channel's default shop."""
        return self.shop_id or default_shop_id(self.channel.value)

    @model_validator(mode="after")
    def _lines_are_consistent(self) -> PlaceOrder:
        # (SKUs differing only in case are refused at the edge, in lines_differing_only_in_case: a
        # rule added after orders were placed must not stop those orders' workflows replaying.)
        seen: set[str] = set()
        for index, line in enumerate(self.lines):
            if line.sku in seen:
                raise ValueError(f"lines[{index}].sku: '{line.sku}' appears twice; merge the lines")
            seen.add(line.sku)
            for name in ("unit_price", "discounted_unit_price"):
                value = getattr(line, name)
                if value is not None and (why := excess_decimals(value, self.currency)):
                    raise ValueError(f"lines[{index}].{name}: {why}")
        stated = self.total if "total" in self.model_fields_set else None
        amounts = [(name, getattr(self, name)) for name in ("subtotal", "shipping", "tax")]
        amounts.append(("total", stated))
        amounts += [(f"discounts[{i}].amount", discount.amount) for i, discount in enumerate(self.discounts)]
        for name, value in amounts:
            if value is not None and (why := excess_decimals(value, self.currency)):
                raise ValueError(f"{name}: {why}")
        total = checked_total(_totals(dict(self), stated_total=stated))
        if total >= MAX_ORDER_TOTAL:
            raise ValueError(f"lines: the order total {total} is not below {MAX_ORDER_TOTAL:,}")
        object.__setattr__(self, "total", total)  # in the currency's digits: 20.3 USD -> 20.30
        return self


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
    tracking_number: TrackingNumber
    warehouse: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class TrackingUpdate(Model):
    status: Literal["in_transit", "delivered"]
    tracking_number: TrackingNumber | None = None
    at: AwareDatetime
    detail: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ConfirmReceipt(Model):
    pass


class RestockCheck(Model):
    """Sent to an out-of-stock order when its stock may have arrived."""


# Who started a cancel: orderflow (an operator, a deadline, a stock shortage) or the channel (the store
# cancelled it there). Only orderflow's own cancels are sent to the store and refunded through Stripe.
CancelOrigin = Literal["orderflow", "channel"]

# What the buyer is told about a cancellation instead of the stock text for its kind; never the
# internal reason (which stays in the timeline and audit). Stored in the outbox and audit params.
CustomerMessage = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CancelOrder(Model):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    customer_message: CustomerMessage | None = None
    # Where the cancel started. "channel": the store (or its payment provider) cancelled it already and
    # refunds its own, so orderflow must not cancel it on the shop again nor refund through Stripe.
    # The default keeps old payloads and recorded histories valid.
    origin: CancelOrigin = "orderflow"


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
    total: Decimal  # what the buyer pays
    currency: str
    created_at: datetime
    updated_at: datetime
    shop_id: str | None = None  # None only in views written before orders named their shop
    # The total's parts (PlaceOrder); None / empty in views written before orders carried them.
    subtotal: Decimal | None = None
    discounts: list[Discount] = []
    shipping: Decimal | None = None
    tax: Decimal | None = None
    taxes_included: bool = False
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
    cancel_origin: CancelOrigin = "orderflow"
    notifications: list[CarriedNotification] = []
    runs: int = 1


class StartOrder(Model):
    """Workflow input: the order, its id and the timing policy in force when it was placed; `carried`
    is the state of the previous run when the order continued as new."""

    order_id: str
    order: PlaceOrder
    policy: OrderPolicy = OrderPolicy()
    carried: OrderState | None = None
