"""The order as OrderWorkflow keeps it: one mutable object that continue-as-new carries (as
domain.models.OrderState) and the view projects (OrderView), plus what an operator can do about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.metrics import ORDER_EXCEPTIONS
    from domain.effects import StockLock
    from domain.models import (
        CancelOrigin,
        CarriedNotification,
        OrderState,
        OrderStatus,
        OrderView,
        PaymentInfo,
        PendingCommand,
        PlaceOrder,
        StartOrder,
        TimelineEvent,
    )
    from domain.notifications import CancelKind
    from domain.policy import OrderPolicy
    from domain.priority import Priority, order_priority
    from domain.transitions import Command, next_status

    from workflows.deadlines import Deadline, Deadlines
    from workflows.parcels import Parcel, Parcels

S = OrderStatus
RETRY_ADVICE = "retry: runs the failed step again once its cause is fixed"
CANCEL_ADVICE = "cancel: cancels the order, releases its stock and refunds any payment"

# OrderState fields kept as they are in the live state; the others are converted (see carry()).
_CONVERTED = {"timers", "parcels", "cancel_kind", "notifications", "runs"}
_AS_CARRIED = tuple(name for name in OrderState.model_fields if name not in _CONVERTED)
# Fields the view shows exactly as the state holds them (the rest are derived in view()).
_AS_SHOWN = tuple(name for name in OrderView.model_fields if name in _AS_CARRIED)


@dataclass
class LiveOrder:
    """Everything the workflow knows about its order, changed in place by its steps."""

    order_id: str
    order: PlaceOrder  # the shipping address can change
    policy: OrderPolicy
    priority: Priority
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    status_since: datetime
    timeline: list[TimelineEvent] = field(default_factory=list)
    deadlines: Deadlines = field(default_factory=Deadlines)
    payment: PaymentInfo | None = None
    parcels: Parcels = field(default_factory=Parcels)
    lock_generation: int = 0
    payment_due_at: datetime | None = None
    hold_why: str | None = None
    ship_by: datetime | None = None
    confirm_by: datetime | None = None
    ship_late: bool = False
    shipped_while_held: bool = False
    reminders_sent: int = 0
    cancel_reason: str | None = None
    cancel_kind: CancelKind | None = None
    customer_message: str | None = None  # words for the buyer given with the cancel
    exception_reason: str | None = None
    unknown_skus: list[str] = field(default_factory=list)  # SKUs no warehouse has ever stocked
    waiting_for_restock: bool = False
    restock_every: timedelta | None = None
    held_since: datetime | None = None
    hold_reason: str | None = None
    failed_in: OrderStatus | None = None  # where `retry` resumes after a failed step
    cancel_pending: str | None = None  # a cancellation that could not finish: retry resumes it
    cancel_origin: CancelOrigin = "orderflow"  # "channel": the store cancelled it, nothing to tell it
    runs: int = 1

    @classmethod
    def start(cls, start: StartOrder, now: datetime) -> LiveOrder:
        """A new order placed `now`, or the order as the previous run carried it."""
        priority = order_priority(start.order, start.policy.ship_within, start.policy.priority)
        base: dict[str, Any] = {
            "order_id": start.order_id,
            "order": start.order,
            "policy": start.policy,
            "priority": priority,
        }
        carried = start.carried
        if carried is None:
            return cls(**base, status=S.PENDING_PAYMENT, created_at=now, updated_at=now, status_since=now)
        kept: dict[str, Any] = {name: getattr(carried, name) for name in _AS_CARRIED}
        return cls(
            **base,
            **kept
            | {
                "timeline": list(carried.timeline),
                "unknown_skus": list(carried.unknown_skus),
                "deadlines": Deadlines(carried.timers),
                "parcels": Parcels([Parcel.from_view(view) for view in carried.parcels]),
                "cancel_kind": CancelKind(carried.cancel_kind) if carried.cancel_kind else None,
                "runs": carried.runs,
            },
        )

    def carry(self, notifications: list[CarriedNotification]) -> OrderState:
        """The state the next run starts from (in the shape running orders already carry)."""
        kept: dict[str, Any] = {name: getattr(self, name) for name in _AS_CARRIED}
        return OrderState(
            **kept | {"timeline": list(self.timeline), "unknown_skus": list(self.unknown_skus)},
            timers=self.deadlines.carried(),
            parcels=self.parcels.views(),
            cancel_kind=self.cancel_kind.value if self.cancel_kind else None,
            notifications=notifications,
            runs=self.runs + 1,
        )

    def view(
        self, *, pending: list[PendingCommand], waiting_on: str | None, waiting_since: datetime | None
    ) -> OrderView:
        order = self.order
        shown: dict[str, Any] = {name: getattr(self, name) for name in _AS_SHOWN}
        return OrderView(
            **shown | {"timeline": list(self.timeline)},
            order_id=self.order_id,
            channel=order.channel,
            channel_order_id=order.channel_order_id,
            customer=order.customer,
            shipping_address=order.shipping_address,
            lines=order.lines,
            total=order.total,
            currency=order.currency,
            shop_id=order.shop,
            subtotal=order.subtotal,
            discounts=order.discounts,
            shipping=order.shipping,
            tax=order.tax,
            taxes_included=order.taxes_included,
            warehouse=self.parcels.label,
            shipments=self.parcels.views(),
            priority=self.priority.key,
            priority_why=self.priority.why,
            suggested_actions=self.suggested_actions(),
            on_hold=self.held_since is not None,
            waiting_on=waiting_on,
            waiting_since=waiting_since,
            pending=pending,
        )

    # ------------------------------------------------------------------ changes every step makes
    def record(self, kind: str, detail: str = "") -> None:
        """A timeline entry (and a log line) at workflow time."""
        self.updated_at = workflow.now()
        self.timeline.append(TimelineEvent(at=self.updated_at, kind=kind, detail=detail))
        workflow.logger.info(
            "order_%s",
            kind,
            extra={"order_id": self.order_id, "status": self.status.value, "detail": detail},
        )

    def move(self, command: Command, *, dry_run: bool = False) -> None:
        """Apply the state machine (domain/transitions.py); raises Refused when it forbids `command`.
        `dry_run`: check only, before a step that would be wasted on a refused command."""
        new = next_status(self.status, command)
        if not dry_run and new != self.status:
            self.status = new
            self.status_since = workflow.now()

    def to_exception(self, reason: str) -> None:
        """A step cannot go on: the order waits in exception for an operator; `retry` resumes it
        where it was."""
        if self.status != S.EXCEPTION:
            self.failed_in = self.status
        self.move(Command.STEP_FAILED)
        self.exception_reason = reason
        self.count_exception()

    def count_exception(self) -> None:
        """Metrics from workflow code are not emitted during replay: each exception counts once."""
        counter = workflow.metric_meter().create_counter(
            ORDER_EXCEPTIONS, "Orders that went to exception", "1"
        )
        counter.add(1, {"reason": self.exception_reason or "unknown"})

    def unknown_sku(self, skus: list[str]) -> None:
        """No warehouse has ever stocked these SKUs: an operator must map them before the order can
        go on (it would otherwise wait for a restock that never comes, or sit on a misleading hold)."""
        self.to_exception("unknown_sku")
        self.unknown_skus = list(skus)
        self.record(
            "unknown_sku",
            f"no warehouse has ever stocked {', '.join(skus)} ({self.order.channel.value} SKU); "
            "map it to a known SKU or add stock for it, then retry, or cancel",
        )

    def wait_for_restock(self) -> None:
        """Stock arriving wakes the order (the restock dispatcher); this deadline is the fallback."""
        self.waiting_for_restock = True
        self.restock_every = self.policy.restock_check_every
        self.deadlines.arm(Deadline.RESTOCK_CHECK, workflow.now() + self.restock_every)

    def stop_waiting_for_restock(self) -> None:
        self.waiting_for_restock = False
        self.restock_every = None
        self.deadlines.disarm(Deadline.RESTOCK_CHECK)

    def placed_in(self, lock: StockLock, command: Command) -> None:
        """Stock is locked: the order's parcels are the lock's parts."""
        self.parcels = Parcels.from_parts(lock.parts, self.ship_by)
        self.exception_reason = None
        self.failed_in = None
        self.stop_waiting_for_restock()
        self.move(command)
        split = f" (split into {len(lock.parts)} parcels)" if len(lock.parts) > 1 else ""
        where = "; ".join(p.describe() for p in self.parcels.active)
        self.record("stock_locked", f"{where}{split}")

    # ------------------------------------------------------------------ what an operator can do
    def suggested_actions(self) -> list[str]:
        """What an operator can do about the exception, in words."""
        if self.status != S.EXCEPTION:
            return []
        if self.exception_reason == "unknown_sku":
            skus = ", ".join(self.unknown_skus)
            mapping = (
                f"map {skus} to a known SKU on the channel, or add stock for it with "
                "PUT /inventory/{warehouse}/{sku}"
            )
            if self.payment is None:
                return [f"{mapping}, then retry: the order takes payment again", CANCEL_ADVICE]
            waiting = (
                "wait: stock booked in for it locks the order by itself"
                if self.waiting_for_restock
                else "resolve-exception wait-for-restock: lock it as soon as stock for it arrives"
            )
            return [f"{mapping}, then retry", waiting, CANCEL_ADVICE]
        if self.exception_reason == "out_of_stock":
            waiting = (
                "resolve-exception wait-for-restock: lock it as soon as stock arrives"
                if not self.waiting_for_restock
                else "wait: stock arriving locks it by itself"
            )
            return [
                waiting,
                "reassign-warehouse: lock it where stock is",
                "mark-shipped: if it left outside orderflow",
                CANCEL_ADVICE,
            ]
        if self.cancel_pending is not None:
            return ["retry: finishes the cancellation once its cause is fixed", CANCEL_ADVICE]
        advice = [RETRY_ADVICE, "reassign-warehouse: lock it in another warehouse", CANCEL_ADVICE]
        if self.exception_reason == "lock_stock_failed" and not self.waiting_for_restock:
            advice.insert(1, "resolve-exception wait-for-restock: lock it by itself once the cause is fixed")
        return advice
