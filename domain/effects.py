"""Payloads of the side effects the order workflow asks its activities for, and their results."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from pydantic import Field

from domain.allocation import StockShortage, Suggestion
from domain.models import Address, ConfirmPayment, Model, OrderLine, Part


class LockStock(Model):
    order_id: str
    lines: list[OrderLine]
    destination: str  # ISO country the parcel goes to: allocation prefers warehouses near it
    generation: int = 0
    warehouse: str | None = None  # force one warehouse; None: allocate by the rules


class ReserveStock(Model):
    """Soft reservation at placement, so unpaid orders are not oversold; reserve=False only measures."""

    order_id: str
    lines: list[OrderLine]
    destination: str
    reserve: bool = True


class Reservation(Model):
    reserved: bool
    parts: list[Part] = Field(default_factory=list)
    scarce: list[str] = Field(default_factory=list)  # SKUs at or under safety stock after reserving
    tight: list[str] = Field(default_factory=list)  # SKUs under twice their safety stock
    unknown: list[str] = Field(default_factory=list)  # SKUs no warehouse has ever stocked


class StockLock(Model):
    """Where the order's stock is locked (one part per warehouse), or what is missing."""

    locked: bool
    parts: list[Part] = Field(default_factory=list)
    shortages: list[StockShortage] = Field(default_factory=list)
    suggestions: list[Suggestion] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)  # SKUs no warehouse has ever stocked

    @property
    def warehouse(self) -> str | None:
        """The warehouse when the order ships whole from one."""
        return self.parts[0].warehouse if len(self.parts) == 1 else None


class ReleaseStock(Model):
    order_id: str


class ShipStock(Model):
    order_id: str
    warehouse: str


class StockLevel(Model):
    warehouse: str
    sku: str
    on_hand: int
    locked: int
    reserved: int
    available: int
    safety_stock: int = 0


class RecordPayment(Model):
    order_id: str
    payment: ConfirmPayment


class RecordRefund(Model):
    order_id: str
    payment_id: str
    amount: Decimal
    currency: str
    reason: str


class CancelShipmentRequest(Model):
    order_id: str
    warehouse: str
    reason: str


class ChangeShipmentAddress(Model):
    order_id: str
    address: Address


class AuditEntry(Model):
    """One accepted operator action; (order_id, action_id) makes a retried write a no-op."""

    order_id: str
    action_id: str
    action: str
    actor: str
    reason: str
    params: dict[str, Any]
    at: datetime


class RequestShipment(Model):
    order_id: str
    warehouse: str
    lines: list[OrderLine]
    address: Address
    ship_by: datetime


# ------------------------------------------------------------------ outbound calls to shops and Stripe
# How many times an outbound call to a shop or Stripe is tried (workflows/shop_calls.py's retry policy);
# the last attempt of a refund settles it failed rather than leave it pending.
SHOP_CALL_ATTEMPTS = 20


class ShopLine(Model):
    """One line of a parcel as the store knows it: its line id there and how many leave."""

    channel_line_id: str
    quantity: int


# Carriers' public tracking pages, for the link a store shows the buyer (Shopify also makes its own for
# carriers it knows). Keyed by the carrier's name folded to lower case without spaces or dashes.
TRACKING_PAGES = {
    "dhl": "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={}",
    "dhlexpress": "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={}",
    "ups": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "royalmail": "https://www.royalmail.com/track-your-item#/tracking-results/{}",
    "dpd": "https://tracking.dpd.de/status/en_US/parcel/{}",
    "gls": "https://gls-group.com/track/{}",
    "sfexpress": "https://www.sf-express.com/we/ow/chn/en/waybill/waybill-detail/{}",
}


def tracking_url(carrier: str, tracking_number: str) -> str:
    """The carrier's tracking page for the number, or "" for a carrier not in TRACKING_PAGES."""
    page = TRACKING_PAGES.get("".join(c for c in carrier.lower() if c.isalnum()))
    return page.format(quote(tracking_number, safe="")) if page else ""


class CreateFulfilment(Model):
    """Tell the shop a parcel left: one fulfilment per parcel, key `fulfilment:<order>:<parcel>`.
    `lines` empty: everything the shop still has to fulfil (an order shipped whole)."""

    order_id: str
    shop_id: str
    channel_order_id: str
    parcel: str  # the warehouse the parcel left from (one parcel per warehouse)
    carrier: str
    tracking_number: str
    tracking_url: str = ""
    lines: list[ShopLine] = Field(default_factory=list)
    last_parcel: bool = True  # WooCommerce: only the last parcel marks the order completed

    @property
    def key(self) -> str:
        return f"fulfilment:{self.order_id}:{self.parcel}"


class CancelOnShop(Model):
    """Cancel the order on its shop; `refund`: the shop took the money and gives it back itself."""

    order_id: str
    shop_id: str
    channel_order_id: str
    reason: str
    refund: bool = False


class RefundPayment(Model):
    """A Stripe payment given back, with Idempotency-Key `refund:<refund_id>`: one refund, any retries."""

    order_id: str
    shop_id: str
    refund_id: str
    payment_intent_id: str
    amount: Decimal
    currency: str


class ShopCheck(Model):
    """Is the shop fixed since it refused a call (healthy again, or changed with PUT /shops since)?"""

    shop_id: str


class PushStock(Model):
    """Set what the shop lists for `sku` to max(0, sellable - the shop's stock buffer)."""

    shop_id: str
    sku: str
    sellable: int


class ShopCall(Model):
    """What an outbound call did: `done` False when there was nothing to call (no credentials), with why."""

    done: bool
    detail: str = ""


class StockSweep(Model):
    """One stock push round (and the StockSync workflow's input): per shop, the latest stock change
    already pushed to it; a shop not named starts from when it was connected."""

    cursors: dict[str, datetime] = Field(default_factory=dict)
    every: timedelta = timedelta(seconds=30)  # changes within this window are pushed once
    # Per shop, the figure last pushed for each SKU the next round reads again (changed just before
    # the cursor): an unchanged figure is not sent again, so an idle shop is not called every round.
    figures: dict[str, dict[str, int]] = Field(default_factory=dict)


class StockSwept(Model):
    """What a round pushed: the cursors to start from next time, and per shop what happened."""

    cursors: dict[str, datetime]
    pushed: int = 0
    notes: list[str] = Field(default_factory=list)
    figures: dict[str, dict[str, int]] = Field(default_factory=dict)
