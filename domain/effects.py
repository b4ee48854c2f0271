"""Payloads of the side effects the order workflow asks its activities for, and their results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from domain.models import Address, ConfirmPayment, Model, OrderLine


class LockStock(Model):
    order_id: str
    lines: list[OrderLine]
    generation: int = 0
    warehouse: str | None = None  # None: the first warehouse that holds every line


class RelockStock(Model):
    """Move the order's lock to another warehouse, all or nothing."""

    order_id: str
    lines: list[OrderLine]
    warehouse: str
    generation: int


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
