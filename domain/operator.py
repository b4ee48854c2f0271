"""Operator interventions: the actions, their parameters, and why an order refuses one right now."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from domain.humanize import moment
from domain.identifiers import WarehouseCode
from domain.models import Address, CustomerMessage, Model, OrderView, TrackingNumber
from domain.policy import MAX_PAYMENT_HOLD
from domain.transitions import Command, refusal

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# Exception reasons stock arriving can cure: `resolve-exception wait-for-restock` puts such an order
# back to waiting for restock (the restock dispatcher wakes it, a back-off timer is the fallback).
RESTOCK_CURES: tuple[str, ...] = ("out_of_stock", "unknown_sku", "lock_stock_failed")


class Action(StrEnum):
    HOLD = "hold"
    RELEASE = "release"
    CANCEL = "cancel"
    EXTEND_PAYMENT = "extend-payment"
    CHANGE_ADDRESS = "change-address"
    REASSIGN_WAREHOUSE = "reassign-warehouse"
    RESOLVE_EXCEPTION = "resolve-exception"
    RETRY = "retry"
    MARK_SHIPPED = "mark-shipped"
    NOTE = "note"


# Which state-machine command each action drives; NOTE and HOLD/RELEASE change no status.
ACTION_COMMANDS: dict[Action, Command] = {
    Action.HOLD: Command.HOLD,
    Action.RELEASE: Command.RELEASE,
    Action.CANCEL: Command.CANCEL,
    Action.EXTEND_PAYMENT: Command.EXTEND_PAYMENT,
    Action.CHANGE_ADDRESS: Command.CHANGE_ADDRESS,
    Action.REASSIGN_WAREHOUSE: Command.REASSIGN_WAREHOUSE,
    Action.RESOLVE_EXCEPTION: Command.RESOLVE_EXCEPTION,
    Action.RETRY: Command.RETRY,
    Action.MARK_SHIPPED: Command.MARK_SHIPPED,
    Action.NOTE: Command.NOTE,
}


class ActionParams(Model):
    """Parameters an action may need; each action checks that its own are present."""

    until: AwareDatetime | None = None  # extend-payment: the new payment deadline
    address: Address | None = None  # change-address
    warehouse: WarehouseCode | None = None  # reassign-warehouse
    resolution: Literal["wait-for-restock", "cancel-and-refund"] | None = None  # resolve-exception
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    tracking_number: TrackingNumber | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None  # note
    # cancel, resolve-exception cancel-and-refund: what the buyer is told instead of the stock text
    customer_message: CustomerMessage | None = None


class ActionRequest(Model):
    """What an operator sends (HTTP body or CLI flags)."""

    reason: Reason
    params: ActionParams = Field(default_factory=ActionParams)


class OperatorAction(Model):
    """An action with who asked for it: the workflow update's payload."""

    action: Action
    actor: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    reason: Reason
    params: ActionParams = Field(default_factory=ActionParams)


_REQUIRED: dict[Action, tuple[str, ...]] = {
    Action.EXTEND_PAYMENT: ("until",),
    Action.CHANGE_ADDRESS: ("address",),
    Action.REASSIGN_WAREHOUSE: ("warehouse",),
    Action.RESOLVE_EXCEPTION: ("resolution",),
    Action.MARK_SHIPPED: ("carrier", "tracking_number"),
    Action.NOTE: ("text",),
}


def missing_params(action: Action, params: ActionParams) -> list[str]:
    return [f"params.{name}" for name in _REQUIRED.get(action, ()) if getattr(params, name) is None]


def action_refusal(order: OrderView, request: OperatorAction, now: datetime) -> str | None:
    """None when the order accepts the action now, else a reason an operator understands."""
    reason = refusal(order.status, ACTION_COMMANDS[request.action])
    if reason is not None:
        return reason
    action, params = request.action, request.params
    if action == Action.HOLD and order.on_hold:
        return "the order is already on hold"
    if action == Action.RELEASE and not order.on_hold:
        return "the order is not on hold"
    if action == Action.EXTEND_PAYMENT and params.until is not None:
        limit = order.created_at + MAX_PAYMENT_HOLD
        if params.until > limit:
            return f"payment can be extended to {moment(limit)} at the latest (7 days after placement)"
        if order.payment_due_at and params.until <= order.payment_due_at:
            return f"the payment deadline is already {moment(order.payment_due_at)}; pick a later time"
        if params.until <= now:
            return "the new payment deadline is in the past"
    if action == Action.REASSIGN_WAREHOUSE and params.warehouse == order.warehouse:
        return f"stock is already locked in {order.warehouse}"
    if action == Action.RESOLVE_EXCEPTION and params.resolution == "wait-for-restock":
        if order.waiting_for_restock:
            return "the order is already waiting for restock"
        if order.exception_reason not in RESTOCK_CURES:
            return (
                f"wait-for-restock resolves {', '.join(RESTOCK_CURES)}, not {order.exception_reason}; "
                "retry or cancel instead"
            )
        if order.payment is None:
            return "the order is not paid yet (stock is locked after payment): add the stock, then retry"
    if params.customer_message is not None and not (
        action == Action.CANCEL
        or (action == Action.RESOLVE_EXCEPTION and params.resolution == "cancel-and-refund")
    ):
        return "params.customer_message goes with cancel or resolve-exception cancel-and-refund only"
    return None
