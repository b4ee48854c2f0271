"""What a store or payment provider's event means to orderflow, whichever counterpart sent it.

integrations/ turns a vendor's payload into one of these; the application layer applies them. They know
no vendor format: a Shopify orders/paid and a WooCommerce order.updated to "processing" are both a
ChannelOrder with status `paid`. Money is Decimal (never a float), times are tz-aware UTC, identifiers
pass through domain.identifiers' normalisation so the same text is the same order everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from domain.codes import CURRENCY_EXPONENTS
from domain.identifiers import Identifier
from domain.models import CountryCode, CurrencyCode, Model, Money

# Column-sized texts: every value accepted here must fit where a later step stores it.
ChannelId = Annotated[Identifier, StringConstraints(min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class ChannelStatus(StrEnum):
    """Where the store says an order stands, in orderflow's words (README: "Channel status mapping")."""

    PENDING_PAYMENT = "pending_payment"  # waits for payment: the reminder sequence runs
    PAID = "paid"  # pays the order: stock is locked, shipping starts
    PAYMENT_FAILED = "payment_failed"  # a payment attempt failed: timeline entry, still awaiting payment
    FULFILLED = "fulfilled"  # the store says it shipped it itself: recorded, nothing shipped by orderflow
    CANCELLED = "cancelled"  # cancels the order in orderflow, stock released
    REFUNDED = "refunded"  # refunded in full on the store: cancelled before shipment, else a return


# What orderflow does on each status: the README's mapping tables quote these words (a test checks).
STATUS_EFFECTS: dict[ChannelStatus, str] = {
    ChannelStatus.PENDING_PAYMENT: "order waits for payment (pending_payment), payment reminders run",
    ChannelStatus.PAID: "order is paid: stock is locked and shipping starts",
    ChannelStatus.PAYMENT_FAILED: "timeline notes the failed payment; the order still waits for payment",
    ChannelStatus.FULFILLED: "store shipped it itself: recorded, orderflow ships nothing",
    ChannelStatus.CANCELLED: "order is cancelled in orderflow, its stock released",
    ChannelStatus.REFUNDED: "cancelled if not shipped yet (stock released), otherwise flagged for a return",
}


def from_minor_units(amount: int, currency: str) -> Decimal:
    """An amount in the currency's minor units as an exact Decimal: 1050 USD -> 10.50, 1050 JPY -> 1050,
    1050 KWD -> 1.050. Exponents are ISO 4217's (domain.codes)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError("an amount in minor units must be a whole number")
    exponent = CURRENCY_EXPONENTS[currency.upper()]
    return Decimal(amount).scaleb(-exponent)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """The inverse of from_minor_units; refuses an amount finer than the currency allows (0.005 USD)."""
    exponent = CURRENCY_EXPONENTS[currency.upper()]
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more than {exponent} decimal places")
    return int(scaled)


class ChannelCustomer(Model):
    channel_customer_id: ChannelId | None = None
    name: ShortText = ""
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] = ""
    locale: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] = ""


class ChannelAddress(Model):
    recipient: ShortText
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] = ""
    company: ShortText = ""
    line1: ShortText
    line2: ShortText = ""
    city: ShortText
    province_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] = ""
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] = ""
    country: CountryCode


class ChannelLine(Model):
    channel_line_id: ChannelId
    sku: Annotated[Identifier, StringConstraints(max_length=64)]  # "" when the store has none
    title: ShortText
    variant: ShortText = ""
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Money
    price_after_discount: Money  # per unit, what the buyer pays for one


class Discount(Model):
    code: Code
    amount: Money


class ChannelMoney(Model):
    currency: CurrencyCode
    subtotal: Money
    shipping: Money
    tax: Money
    taxes_included: bool
    discounts: tuple[Discount, ...] = ()
    total: Money  # what the buyer pays; a payment must equal this

    @model_validator(mode="after")
    def _fits_currency(self) -> ChannelMoney:
        digits = CURRENCY_EXPONENTS[self.currency]
        for name in ("subtotal", "shipping", "tax", "total"):
            value: Decimal = getattr(self, name)
            if value != round(value, digits):
                raise ValueError(f"{name}: {value} has more decimals than {self.currency} allows ({digits})")
        return self


class ChannelOrder(Model):
    """An order as the store describes it now (create or update); the newest updated_at wins."""

    kind: Literal["order"] = "order"
    shop_id: ChannelId
    channel_order_id: ChannelId
    name: ShortText = ""  # what the seller and buyer call it: "#1001"
    updated_at: UtcTime
    status: ChannelStatus
    customer: ChannelCustomer
    address: ChannelAddress | None  # None: nothing to ship (digital goods) or not given yet
    lines: tuple[ChannelLine, ...]
    money: ChannelMoney
    # The store took the money through Stripe: its PaymentIntent, so a refund goes back through Stripe.
    stripe_payment_intent_id: ChannelId | None = None


class ChannelPaid(Model):
    """The store says the order is paid (Shopify orders/paid); carries the order for paid-before-created."""

    kind: Literal["paid"] = "paid"
    order: ChannelOrder


class ChannelCancelled(Model):
    """The order was cancelled or deleted on the store. `order` and `updated_at` are None when the store
    sent only its id (WooCommerce order.deleted): a deletion applies whatever was applied before."""

    kind: Literal["cancelled"] = "cancelled"
    shop_id: ChannelId
    channel_order_id: ChannelId
    updated_at: UtcTime | None
    reason: ShortText
    order: ChannelOrder | None = None


class ChannelRefunded(Model):
    """A refund made on the store (Shopify refunds/create)."""

    kind: Literal["refunded"] = "refunded"
    shop_id: ChannelId
    channel_order_id: ChannelId
    channel_refund_id: ChannelId
    updated_at: UtcTime
    amount: Money
    currency: CurrencyCode
    restocked_lines: tuple[tuple[str, int], ...] = ()  # (channel line id, quantity) put back on sale
    note: ShortText = ""


class ShopUninstalled(Model):
    """The seller removed orderflow's app from the store: its token no longer works."""

    kind: Literal["uninstalled"] = "uninstalled"
    shop_id: ChannelId
    updated_at: UtcTime


class PaymentReference(Model):
    """Which order a payment is for. Stripe metadata `orderflow_order_id` names the orderflow order;
    otherwise `shop_id` + `channel_order_id` (or WooCommerce's gateway `order_id`) name the store order."""

    order_id: ChannelId | None = None
    shop_id: ChannelId | None = None
    channel_order_id: ChannelId | None = None

    @model_validator(mode="after")
    def _names_an_order(self) -> PaymentReference:
        if self.order_id is None and self.channel_order_id is None:
            raise ValueError("names no order: set metadata orderflow_order_id or channel_order_id")
        return self


class PaymentSucceeded(Model):
    kind: Literal["payment_succeeded"] = "payment_succeeded"
    event_id: ChannelId
    payment_intent_id: ChannelId
    reference: PaymentReference
    amount: Money
    currency: CurrencyCode
    occurred_at: UtcTime


class PaymentFailed(Model):
    kind: Literal["payment_failed"] = "payment_failed"
    event_id: ChannelId
    payment_intent_id: ChannelId
    reference: PaymentReference
    code: Code = ""
    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    occurred_at: UtcTime


class ChargeRefunded(Model):
    kind: Literal["charge_refunded"] = "charge_refunded"
    event_id: ChannelId
    charge_id: ChannelId
    payment_intent_id: ChannelId | None
    reference: PaymentReference | None  # charges carry the intent's metadata only when copied over
    refunded_total: Money  # all refunds on this charge so far
    currency: CurrencyCode
    refund_ids: tuple[ChannelId, ...] = ()
    orderflow_refund_ids: tuple[ChannelId, ...] = ()  # from refund metadata: which records to settle
    occurred_at: UtcTime


ChannelEvent = Annotated[
    ChannelOrder | ChannelPaid | ChannelCancelled | ChannelRefunded | ShopUninstalled,
    Field(discriminator="kind"),
]
PaymentEvent = Annotated[PaymentSucceeded | PaymentFailed | ChargeRefunded, Field(discriminator="kind")]
