"""How an order shows in the Temporal Web UI: current details, timer labels, search attributes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.humanize import moment
    from domain.models import OrderStatus, OrderView
    from domain.stages import awaits_shipment

    from workflows import search_attributes as sa

S = OrderStatus
REMINDER_NAMES = ("plain reminder", "offer of help", "last call with the auto-cancel time")


def hours(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 3600)} h"


def _at(when: datetime | None) -> str:
    return moment(when) if when is not None else "no deadline yet"


def current_details(view: OrderView, next_deadline: tuple[str, datetime] | None) -> str:
    """Markdown for the Web UI: what the order waits for, since when, and what happens next
    (`next_deadline`: the label and time of the deadline due first, workflows/deadlines.py)."""
    unshipped = [s.warehouse for s in view.shipments if s.status in ("locked", "requested")]
    waiting = {
        S.PENDING_PAYMENT: f"payment from the buyer, due by {_at(view.payment_due_at)} ({view.hold_why})",
        S.PAID: "a stock lock",
        S.STOCK_LOCKED: f"warehouse **{view.warehouse}** to ship, by {_at(view.ship_by)}",
        S.PARTIALLY_SHIPPED: f"the parcels from **{', '.join(unshipped)}** to ship, by {_at(view.ship_by)}",
        S.SHIPPED: "the first carrier scan",
        S.IN_TRANSIT: "delivery",
        S.DELIVERED: f"the buyer to confirm receipt, or auto-completion at {_at(view.confirm_by)}",
        S.EXCEPTION: f"an operator to resolve **{view.exception_reason}**"
        + (" (waiting for restock)" if view.waiting_for_restock else ""),
    }.get(view.status)
    assert view.status_since is not None
    lines = [f"**{view.status.value}** since {moment(view.status_since)}"]
    if waiting:
        lines.append(f"Waiting for {waiting}.")
    if view.waiting_on and view.waiting_since:
        lines.append(
            f"**Retrying** {view.waiting_on} since {moment(view.waiting_since)}: see the pending "
            "activity for the last error."
        )
    if view.pending:
        lines.append("Commands waiting: " + ", ".join(p.command for p in view.pending) + ".")
    if view.exception_reason and view.suggested_actions:
        lines.append("What to do: " + "; ".join(view.suggested_actions) + ".")
    if view.on_hold and view.held_since:
        lines.append(f"**On hold** since {moment(view.held_since)}: {view.hold_reason}")
    if view.ship_late:
        lines.append("Ship-by deadline missed.")
    if next_deadline and not view.on_hold:
        label, due = next_deadline
        lines.append(f"Next: {label} at {moment(due)}.")
    return "\n\n".join(lines)


def search_attributes(view: OrderView, *, warehouse_list: bool = True) -> dict[str, Any]:
    """The value of every order search attribute for this view (None: unset).

    `warehouse_list`: Warehouses (a keyword per warehouse) instead of the older Warehouse label, which
    is then unset; False only for histories recorded before (patch "warehouses-keyword-list")."""
    codes = view.warehouse.split("+") if view.warehouse else None
    warehouses = {sa.WAREHOUSE.name: None, sa.WAREHOUSES.name: codes} if warehouse_list else {}
    return {
        sa.ORDER_STATUS.name: view.status.value,
        sa.CHANNEL.name: view.channel.value,
        sa.DESTINATION_COUNTRY.name: view.shipping_address.country,
        sa.WAREHOUSE.name: view.warehouse,
        **warehouses,
        sa.CURRENCY.name: view.currency,
        sa.EXCEPTION_REASON.name: view.exception_reason,
        sa.ORDER_TOTAL.name: float(view.total),
        sa.PAYMENT_DEADLINE.name: view.payment_due_at,
        sa.SHIP_BY.name: view.ship_by if awaits_shipment(view.status) else None,
        sa.ON_HOLD.name: view.on_hold,
    }
