"""Payloads of the side effects the order workflow asks its activities for, and their results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from domain.models import Address, ConfirmPayment, Model, OrderLine


class LockStock(Model):
    order_id: str
    lines: list[OrderLine]


class StockShortage(Model):
    sku: str
    requested: int
    available: int


class StockLock(Model):
    """Where the order's stock is locked, or what is missing when it could not be."""

    locked: bool
    warehouse: str | None = None
    shortages: list[StockShortage] = Field(default_factory=list)


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


class RecordPayment(Model):
    order_id: str
    payment: ConfirmPayment


class RecordRefund(Model):
    order_id: str
    payment_id: str
    amount: Decimal
    currency: str
    reason: str


class RequestShipment(Model):
    order_id: str
    warehouse: str
    lines: list[OrderLine]
    address: Address
    ship_by: datetime
