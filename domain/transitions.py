"""The order state machine as data: status x command -> new status, or a reason a person understands."""

from __future__ import annotations

from enum import StrEnum

from domain.models import OrderStatus as S


class Command(StrEnum):
    PAY = "pay"
    LOCK_STOCK = "lock_stock"
    STOCK_SHORT = "stock_short"
    SHIP = "ship"
    SHIP_PART = "ship_part"
    DELIVER_PART = "deliver_part"
    IN_TRANSIT = "in_transit"
    DELIVER = "deliver"
    CONFIRM_RECEIPT = "confirm_receipt"
    AUTO_COMPLETE = "auto_complete"
    CANCEL = "cancel"
    PAYMENT_TIMEOUT = "payment_timeout"
    STEP_FAILED = "step_failed"
    RESTOCKED = "restocked"
    # operator interventions
    HOLD = "hold"
    RELEASE = "release"
    NOTE = "note"
    EXTEND_PAYMENT = "extend_payment"
    CHANGE_ADDRESS = "change_address"
    REASSIGN_WAREHOUSE = "reassign_warehouse"
    RESOLVE_EXCEPTION = "resolve_exception"
    RETRY = "retry"
    MARK_SHIPPED = "mark_shipped"


C = Command
_OPEN = (
    S.PENDING_PAYMENT,
    S.PAID,
    S.STOCK_LOCKED,
    S.EXCEPTION,
    S.PARTIALLY_SHIPPED,
    S.SHIPPED,
    S.IN_TRANSIT,
    S.DELIVERED,
)
_BEFORE_SHIPMENT = (S.PENDING_PAYMENT, S.PAID, S.STOCK_LOCKED, S.EXCEPTION)


def _stay(*statuses: S) -> dict[S, S]:
    return {status: status for status in statuses}


# The only allowed moves. Anything absent is refused with a reason from REFUSALS below.
TRANSITIONS: dict[C, dict[S, S]] = {
    C.PAY: {S.PENDING_PAYMENT: S.PAID},
    C.LOCK_STOCK: {S.PAID: S.STOCK_LOCKED},
    C.STOCK_SHORT: {S.PAID: S.EXCEPTION},
    # A split order ships part by part: SHIP_PART until the last parcel leaves, then SHIP.
    C.SHIP: {S.STOCK_LOCKED: S.SHIPPED, S.PARTIALLY_SHIPPED: S.SHIPPED},
    C.SHIP_PART: {S.STOCK_LOCKED: S.PARTIALLY_SHIPPED, S.PARTIALLY_SHIPPED: S.PARTIALLY_SHIPPED},
    C.IN_TRANSIT: {
        S.SHIPPED: S.IN_TRANSIT,
        S.IN_TRANSIT: S.IN_TRANSIT,
        S.PARTIALLY_SHIPPED: S.PARTIALLY_SHIPPED,
    },
    C.DELIVER: {S.SHIPPED: S.DELIVERED, S.IN_TRANSIT: S.DELIVERED},
    C.DELIVER_PART: {
        S.SHIPPED: S.IN_TRANSIT,
        S.IN_TRANSIT: S.IN_TRANSIT,
        S.PARTIALLY_SHIPPED: S.PARTIALLY_SHIPPED,
    },
    C.CONFIRM_RECEIPT: {S.DELIVERED: S.COMPLETED},
    C.AUTO_COMPLETE: {S.DELIVERED: S.COMPLETED},
    C.CANCEL: {
        S.PENDING_PAYMENT: S.CANCELLED,
        S.PAID: S.CANCELLED,
        S.STOCK_LOCKED: S.CANCELLED,
        S.EXCEPTION: S.CANCELLED,
    },
    C.PAYMENT_TIMEOUT: {S.PENDING_PAYMENT: S.CANCELLED},
    # A step no retry can fix, or a cancellation that could not finish: an operator takes over.
    C.STEP_FAILED: {
        S.PENDING_PAYMENT: S.EXCEPTION,
        S.PAID: S.EXCEPTION,
        S.STOCK_LOCKED: S.EXCEPTION,
        S.PARTIALLY_SHIPPED: S.EXCEPTION,
        S.EXCEPTION: S.EXCEPTION,
    },
    C.RESTOCKED: {S.EXCEPTION: S.STOCK_LOCKED},
    C.HOLD: _stay(*_OPEN),
    C.RELEASE: _stay(*_OPEN),
    C.NOTE: _stay(*_OPEN),
    C.EXTEND_PAYMENT: _stay(S.PENDING_PAYMENT),
    C.CHANGE_ADDRESS: _stay(*_BEFORE_SHIPMENT),
    C.REASSIGN_WAREHOUSE: {S.STOCK_LOCKED: S.STOCK_LOCKED, S.EXCEPTION: S.STOCK_LOCKED},
    C.RESOLVE_EXCEPTION: _stay(S.EXCEPTION),
    C.RETRY: {S.EXCEPTION: S.PAID},
    C.MARK_SHIPPED: {
        S.PAID: S.SHIPPED,
        S.STOCK_LOCKED: S.SHIPPED,
        S.EXCEPTION: S.SHIPPED,
        S.PARTIALLY_SHIPPED: S.SHIPPED,
    },
}

# Why a status refuses commands, said once per status; command-specific wording overrides it.
_STATUS_REASONS: dict[S, str] = {
    S.PENDING_PAYMENT: "the order is not paid yet",
    S.PAID: "stock for the order is not locked yet",
    S.STOCK_LOCKED: "the order has not shipped yet",
    S.PARTIALLY_SHIPPED: "part of the order has already shipped",
    S.SHIPPED: "the order has already shipped",
    S.IN_TRANSIT: "the order has already shipped and is in transit",
    S.DELIVERED: "the order has already been delivered",
    S.COMPLETED: "the order is completed",
    S.CANCELLED: "the order is cancelled",
    S.EXCEPTION: "the order is in exception and needs an operator to resolve it first",
}

_AFTER_SHIPMENT = (S.PARTIALLY_SHIPPED, S.SHIPPED, S.IN_TRANSIT, S.DELIVERED)

REFUSALS: dict[tuple[C, S], str] = {
    **{(C.PAY, s): "the order is already paid" for s in (S.PAID, S.STOCK_LOCKED, S.EXCEPTION)},
    **{(C.PAY, s): "the order is already paid and shipped" for s in _AFTER_SHIPMENT},
    **{
        (C.CANCEL, s): "the order has already shipped and can no longer be cancelled; open a return instead"
        for s in _AFTER_SHIPMENT
    },
    (C.CANCEL, S.CANCELLED): "the order is already cancelled",
    (C.CONFIRM_RECEIPT, S.PENDING_PAYMENT): "the order has not been delivered yet",
    (C.CONFIRM_RECEIPT, S.PAID): "the order has not been delivered yet",
    (C.CONFIRM_RECEIPT, S.STOCK_LOCKED): "the order has not been delivered yet",
    (C.CONFIRM_RECEIPT, S.SHIPPED): "the order has not been delivered yet",
    (C.CONFIRM_RECEIPT, S.IN_TRANSIT): "the order has not been delivered yet",
    (C.CONFIRM_RECEIPT, S.PARTIALLY_SHIPPED): "the order has not been delivered yet",
    (C.IN_TRANSIT, S.STOCK_LOCKED): "the order has not shipped yet",
    (C.DELIVER, S.STOCK_LOCKED): "the order has not shipped yet",
    (C.IN_TRANSIT, S.DELIVERED): "the order was already delivered",
    (C.SHIP, S.PENDING_PAYMENT): "the order is not paid yet",
    **{(C.EXTEND_PAYMENT, s): "the order is already paid" for s in _OPEN if s != S.PENDING_PAYMENT},
    **{
        (C.CHANGE_ADDRESS, s): "the order has already shipped; the address can no longer change"
        for s in _AFTER_SHIPMENT
    },
    (C.REASSIGN_WAREHOUSE, S.PENDING_PAYMENT): "the order is not paid yet; stock is locked after payment",
    **{(C.REASSIGN_WAREHOUSE, s): "the order has already shipped" for s in _AFTER_SHIPMENT},
    **{(C.RESOLVE_EXCEPTION, s): "the order is not in exception" for s in _OPEN if s != S.EXCEPTION},
    **{(C.RETRY, s): "there is no failed step to retry" for s in _OPEN if s != S.EXCEPTION},
    (C.MARK_SHIPPED, S.PENDING_PAYMENT): "the order is not paid yet",
    **{(C.MARK_SHIPPED, s): "the order has already shipped" for s in _AFTER_SHIPMENT},
}


class Refused(Exception):
    """A command the order's current status does not allow; `reason` is shown to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refusal(status: S, command: C) -> str | None:
    """None when the command is allowed in this status, else the reason it is not."""
    if status in TRANSITIONS[command]:
        return None
    return REFUSALS.get((command, status), _STATUS_REASONS[status])


def next_status(status: S, command: C) -> S:
    reason = refusal(status, command)
    if reason is not None:
        raise Refused(reason)
    return TRANSITIONS[command][status]


def mermaid_diagram() -> str:
    """The state diagram drawn from TRANSITIONS; docs/ARCHITECTURE.md must show exactly this."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.PENDING_PAYMENT.value}"]
    for command, moves in TRANSITIONS.items():
        for source, target in moves.items():
            if source != target:  # commands that keep the status are listed in the docs instead
                lines.append(f"    {source.value} --> {target.value}: {command.value}")
    lines += [f"    {S.COMPLETED.value} --> [*]", f"    {S.CANCELLED.value} --> [*]"]
    return "\n".join(lines)
