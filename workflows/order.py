"""OrderWorkflow: one durable workflow per order, the single writer of that order's state.

Updates validate a command against domain rules and queue it; the main loop is the only place that
runs side effects, one command at a time, then takes the automatic next step (`_advance`), then
sleeps until the next deadline. Every deadline is a named entry in `_timers`, fixed from
workflow.now(); a hold pauses them all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from core.metrics import ORDER_EXCEPTIONS, ORDERS_PLACED
    from domain.effects import (
        AuditEntry,
        CancelShipmentRequest,
        ChangeShipmentAddress,
        LockStock,
        RecordPayment,
        RecordRefund,
        ReleaseStock,
        RequestShipment,
        Reservation,
        ReserveStock,
        ShipStock,
        StockLock,
    )
    from domain.models import (
        TERMINAL_STATUSES,
        Address,
        CancelOrder,
        ConfirmPayment,
        ConfirmReceipt,
        ConfirmShipment,
        OrderStatus,
        OrderView,
        PaymentInfo,
        RestockCheck,
        StartOrder,
        TimelineEvent,
        TrackingUpdate,
    )
    from domain.notifications import PAYMENT_REMINDERS, NotificationKind, Notify
    from domain.operator import Action, OperatorAction, action_refusal, missing_params
    from domain.policy import MAX_PAYMENT_HOLD, payment_hold_for
    from domain.priority import order_priority
    from domain.transitions import Command, Refused, next_status, refusal

    from workflows import presentation
    from workflows import search_attributes as sa
    from workflows.parcels import Parcel, Parcels

S = OrderStatus
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A step that still fails after these attempts puts the order in exception for an operator to retry.
STEP_RETRY = RetryPolicy(maximum_attempts=8, maximum_interval=timedelta(minutes=2))
PROJECTION_RETRY = RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(seconds=30))
NOTIFY_RETRY = RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=10))


def _refuse(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="Refused", non_retryable=True)


class StepFailed(Exception):
    """An activity gave up after its retries; the order goes to exception `<step>_failed`."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step


@dataclass
class _Job:
    """A command accepted by an update, waiting for the main loop to carry it out."""

    name: str
    run: Callable[[], Awaitable[None]]
    done: bool = False
    error: str | None = None


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, start: StartOrder) -> None:
        self._id = start.order_id
        self._order = start.order
        self._policy = start.policy
        self._priority = order_priority(start.order, start.policy.ship_within)
        self._status = S.PENDING_PAYMENT
        self._created_at = workflow.now()
        self._updated_at = self._created_at
        self._status_since = self._created_at
        self._placed = False
        self._timeline: list[TimelineEvent] = []
        self._timers: dict[str, datetime] = {}
        self._inbox: list[_Job] = []
        self._notifications: list[asyncio.Task[None]] = []
        self._payment: PaymentInfo | None = None
        self._parcels = Parcels()
        self._lock_generation = 0
        self._payment_due_at: datetime | None = None
        self._hold_why: str | None = None
        self._ship_by: datetime | None = None
        self._confirm_by: datetime | None = None
        self._ship_late = False
        self._reminders_sent = 0
        self._cancel_reason: str | None = None
        self._exception_reason: str | None = None
        self._waiting_for_restock = False
        self._held_since: datetime | None = None
        self._hold_reason: str | None = None
        self._published_attributes: dict[str, Any] = {}

    # ------------------------------------------------------------------ main loop
    @workflow.run
    async def run(self, start: StartOrder) -> OrderView:
        order = self._order
        self._record(
            "placed",
            f"{order.channel} order {order.channel_order_id}: {len(order.lines)} line(s), "
            f"total {order.total} {order.currency}; priority {self._priority.key} "
            f"({', '.join(self._priority.why)})",
        )
        await self._reserve_and_arm_payment_timers()
        self._placed = True
        placed = workflow.metric_meter().create_counter(ORDERS_PLACED, "Orders placed", "1")
        placed.add(1, {"channel": order.channel.value})
        await self._publish()
        while self._status not in TERMINAL_STATUSES or self._inbox:
            await self._wait_for_work()
            while self._inbox:
                job = self._inbox.pop(0)
                try:
                    await job.run()
                    await self._advance()
                except Refused as refused:
                    job.error = refused.reason
                job.done = True
                await self._publish()
            if self._held_since is None:
                fired = await self._fire_due_timers()
                if await self._advance() or fired:
                    await self._publish()
        events = len(self._timeline)
        await asyncio.gather(*self._notifications)
        if len(self._timeline) != events:  # a notification failed after the last projection
            await self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view()

    async def _wait_for_work(self) -> None:
        if self._inbox:
            return
        if not self._timers or self._held_since is not None:
            await workflow.wait_condition(lambda: bool(self._inbox))
            return
        name, due = min(self._timers.items(), key=lambda item: item[1])
        timeout = due - workflow.now()
        if timeout <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):  # the deadline came: _fire_due_timers acts on it
            await workflow.wait_condition(
                lambda: bool(self._inbox),
                timeout=timeout,
                timeout_summary=presentation.timer_label(name, self._policy),
            )

    async def _fire_due_timers(self) -> bool:
        now = workflow.now()
        fired = False
        for name, due in sorted(self._timers.items(), key=lambda item: item[1]):
            if due > now or name not in self._timers or self._status in TERMINAL_STATUSES:
                continue
            del self._timers[name]
            fired = True
            if name.startswith("payment_reminder_"):
                self._send_reminder(int(name.rsplit("_", 1)[1]))
            elif name == "payment_timeout":
                await self._cancel("payment_timeout", Command.PAYMENT_TIMEOUT)
            elif name == "ship_by":
                self._ship_late = True
                late = self._parcels.unshipped()
                for parcel in late:
                    parcel.late = True
                where = ", ".join(p.warehouse for p in late) or "the warehouse"
                self._record(
                    "ship_deadline_missed",
                    f"not shipped by {due.isoformat()} ({presentation.hours(self._policy.ship_within)} "
                    f"after payment); still waiting for {where}",
                )
            elif name == "confirm_by":
                self._move(Command.AUTO_COMPLETE)
                self._record("completed", "confirmation window ended without a buyer complaint")
            elif name == "restock_check":
                await self._try_restock()
        return fired

    async def _advance(self) -> bool:
        """Take the automatic next step(s) the status calls for, unless the order is on hold."""
        progressed = False
        while self._held_since is None:
            try:
                if self._status == S.PAID:
                    await self._lock_stock()
                elif self._status in (S.STOCK_LOCKED, S.PARTIALLY_SHIPPED) and self._parcels.to_request():
                    await self._request_shipment(self._parcels.to_request()[0])
                else:
                    break
            except StepFailed as failed:
                self._move(Command.STEP_FAILED)
                self._exception_reason = f"{failed.step}_failed"
                self._count_exception()
                self._record("step_failed", f"{failed.step} failed after retries: {failed}; retry it")
            progressed = True
        return progressed

    # ------------------------------------------------------------------ updates from integrations
    @workflow.update
    async def placed(self) -> OrderView:
        """The view once placement is done (stock reserved, payment deadline set): for the API."""
        await workflow.wait_condition(lambda: self._placed)
        return self._view()

    @workflow.update
    async def pay(self, payment: ConfirmPayment) -> OrderView:
        if self._payment and self._payment.payment_id == payment.payment_id:
            return self._view()  # the same payment again (webhook retry): nothing changes
        return await self._submit("pay", lambda: self._do_pay(payment))

    @pay.validator
    def _validate_pay(self, payment: ConfirmPayment) -> None:
        if self._payment and self._payment.payment_id == payment.payment_id:
            return
        self._check(Command.PAY)
        total, currency = self._order.total, self._order.currency
        if payment.currency != currency or payment.amount != total:
            raise _refuse(
                f"payment of {payment.amount} {payment.currency} does not match the order total "
                f"{total} {currency}; the order stays unpaid"
            )

    @workflow.update
    async def ship(self, shipment: ConfirmShipment) -> OrderView:
        return await self._submit("ship", lambda: self._do_ship(shipment))

    @ship.validator
    def _validate_ship(self, shipment: ConfirmShipment) -> None:
        self._check(Command.SHIP)
        parcel, reason = self._parcels.for_shipment(shipment.warehouse)
        if parcel is None:
            raise _refuse(reason or "no parcel to ship")

    @workflow.update
    async def track(self, update: TrackingUpdate) -> OrderView:
        return await self._submit("track", lambda: self._do_track(update))

    @track.validator
    def _validate_track(self, update: TrackingUpdate) -> None:
        self._check(Command.DELIVER_PART if update.status == "delivered" else Command.IN_TRANSIT)
        parcel, reason = self._parcels.for_tracking(update.tracking_number)
        if parcel is None:
            raise _refuse(reason or "no parcel to track")
        if parcel.status == "delivered":
            raise _refuse(f"the parcel {parcel.tracking_number} was already delivered")

    @workflow.update
    async def confirm_receipt(self, _: ConfirmReceipt) -> OrderView:
        return await self._submit("confirm_receipt", self._do_confirm_receipt)

    @confirm_receipt.validator
    def _validate_confirm_receipt(self, _: ConfirmReceipt) -> None:
        self._check(Command.CONFIRM_RECEIPT)

    @workflow.update
    async def cancel(self, request: CancelOrder) -> OrderView:
        """A cancel from the channel (the buyer cancelled there); operators use `operate`."""
        return await self._submit("cancel", lambda: self._cancel(request.reason, Command.CANCEL))

    @cancel.validator
    def _validate_cancel(self, request: CancelOrder) -> None:
        self._check(Command.CANCEL)

    @workflow.update
    async def restock(self, _: RestockCheck) -> OrderView:
        """Stock may have arrived for an out-of-stock order: try its lock now (called in priority order)."""
        return await self._submit("restock", self._try_restock)

    @restock.validator
    def _validate_restock(self, _: RestockCheck) -> None:
        if self._status != S.EXCEPTION or self._exception_reason != "out_of_stock":
            raise _refuse("the order is not waiting for stock")

    # ------------------------------------------------------------------ operator actions
    @workflow.update
    async def operate(self, request: OperatorAction) -> OrderView:
        info = workflow.current_update_info()
        action_id = info.id if info else str(workflow.uuid4())
        return await self._submit(request.action.value, lambda: self._do_operate(request, action_id))

    @operate.validator
    def _validate_operate(self, request: OperatorAction) -> None:
        missing = missing_params(request.action, request.params)
        if missing:
            raise _refuse(f"{request.action.value} needs {', '.join(missing)}")
        reason = action_refusal(self._view(), request, workflow.now())
        if reason is not None:
            raise _refuse(reason)

    @workflow.query
    def view(self) -> OrderView:
        return self._view()

    def _check(self, command: Command) -> None:
        reason = refusal(self._status, command)
        if reason is not None:
            raise _refuse(reason)

    async def _submit(self, name: str, run: Callable[[], Awaitable[None]]) -> OrderView:
        job = _Job(name, run)
        self._inbox.append(job)
        await workflow.wait_condition(lambda: job.done)
        if job.error is not None:
            raise _refuse(job.error)
        return self._view()

    # ------------------------------------------------------------------ steps
    async def _reserve_and_arm_payment_timers(self) -> None:
        """Reserve stock for the unpaid order and choose its payment hold from the stock pressure."""
        order = self._order
        try:
            reservation: Reservation = await self._step(
                "reserve_stock",
                InventoryActivities.reserve_stock,
                ReserveStock(
                    order_id=self._id,
                    lines=order.lines,
                    destination=order.shipping_address.country,
                    reserve=self._policy.reserve_stock,
                ),
                "reserve stock for the unpaid order",
            )
        except StepFailed as failed:
            reservation = Reservation(reserved=False)
            self._record("reservation_failed", f"{failed}; the order waits unreserved")
        if self._policy.reserve_stock and reservation.reserved:
            where = "; ".join(Parcel(p.warehouse, p.lines).describe() for p in reservation.parts)
            self._record("stock_reserved", where)
        elif self._policy.reserve_stock:
            self._record("stock_not_reserved", "not enough stock to reserve; it is allocated on payment")
        hold, why = payment_hold_for(self._policy, reservation.scarce, reservation.tight)
        self._hold_why = why
        for number, offset in enumerate(self._policy.reminder_offsets, start=1):
            if offset < hold:
                self._timers[f"payment_reminder_{number}"] = self._created_at + offset
        self._payment_due_at = self._created_at + hold
        self._timers["payment_timeout"] = self._payment_due_at
        self._record("payment_due", f"by {self._payment_due_at.isoformat()}: {why}")

    async def _do_pay(self, payment: ConfirmPayment) -> None:
        self._move(Command.PAY, dry_run=True)
        try:
            await self._activity(
                OrderActivities.record_payment,
                RecordPayment(order_id=self._id, payment=payment),
                "record payment",
            )
        except ActivityError as err:
            cause = err.cause
            raise Refused(cause.message if isinstance(cause, ApplicationError) else str(err)) from err
        now = workflow.now()
        self._move(Command.PAY)
        self._payment = PaymentInfo(
            payment_id=payment.payment_id,
            amount=payment.amount,
            currency=payment.currency,
            method=payment.method,
            paid_at=now,
        )
        for name in [n for n in self._timers if n.startswith("payment_")]:
            del self._timers[name]
        self._payment_due_at = None
        self._ship_by = now + self._policy.ship_within
        self._timers["ship_by"] = self._ship_by
        self._record("paid", f"{payment.amount} {payment.currency} by {payment.method}")
        await self._publish()

    async def _request_lock(
        self, summary: str, warehouse: str | None = None, generation: int = 0
    ) -> StockLock:
        lock: StockLock = await self._step(
            "lock_stock",
            InventoryActivities.lock_stock,
            LockStock(
                order_id=self._id,
                lines=self._order.lines,
                destination=self._order.shipping_address.country,
                generation=generation,
                warehouse=warehouse,
            ),
            summary,
        )
        return lock

    async def _lock_stock(self) -> None:
        lock = await self._request_lock("allocate and lock stock", generation=self._lock_generation)
        if lock.locked:
            self._placed_in(lock, Command.LOCK_STOCK)
            return
        self._move(Command.STOCK_SHORT)
        self._exception_reason = "out_of_stock"
        self._count_exception()
        self._waiting_for_restock = True  # restock resolves it by itself; an operator may cancel
        self._timers["restock_check"] = workflow.now() + self._policy.restock_check_every
        short = ", ".join(f"{s.sku} {s.available}/{s.requested}" for s in lock.shortages)
        advice = "; ".join(s.detail for s in lock.suggestions)
        self._record("out_of_stock", f"short: {short or 'nothing to ship from'}; nothing locked. {advice}")

    def _placed_in(self, lock: StockLock, command: Command) -> None:
        self._parcels = Parcels.from_parts(lock.parts, self._ship_by)
        self._waiting_for_restock = False
        self._exception_reason = None
        self._timers.pop("restock_check", None)
        self._move(command)
        split = f" (split into {len(lock.parts)} parcels)" if len(lock.parts) > 1 else ""
        where = "; ".join(p.describe() for p in self._parcels.active)
        self._record("stock_locked", f"{where}{split}")

    async def _request_shipment(self, parcel: Parcel) -> None:
        assert self._ship_by is not None
        await self._step(
            "request_shipment",
            OrderActivities.request_shipment,
            RequestShipment(
                order_id=self._id,
                warehouse=parcel.warehouse,
                lines=[
                    self._order.lines[item.line_no].model_copy(update={"quantity": item.quantity})
                    for item in parcel.lines
                ],
                address=self._order.shipping_address,
                ship_by=self._ship_by,
            ),
            f"ask {parcel.warehouse} to ship",
        )
        parcel.status = "requested"
        self._record("shipment_requested", f"{parcel.describe()}, by {self._ship_by.isoformat()}")

    async def _try_restock(self) -> None:
        """Out of stock: try the lock again; if still short, look again later."""
        if self._status != S.EXCEPTION or self._exception_reason != "out_of_stock":
            return
        lock = await self._request_lock("lock stock after restock", generation=self._lock_generation)
        if not lock.locked:
            self._timers["restock_check"] = workflow.now() + self._policy.restock_check_every
            return
        self._placed_in(lock, Command.RESTOCKED)

    async def _do_ship(self, shipment: ConfirmShipment) -> None:
        parcel, reason = self._parcels.for_shipment(shipment.warehouse)
        if parcel is None:
            raise Refused(reason or "no parcel to ship")
        command = self._parcels.ship_command(parcel)
        self._move(command, dry_run=True)
        await self._ship_parcel(parcel, shipment.carrier, shipment.tracking_number)
        self._move(command)

    async def _ship_parcel(self, parcel: Parcel, carrier: str, tracking_number: str) -> None:
        """The parcel left: its stock leaves the warehouse, its request closes, the buyer hears."""
        if parcel.lines:
            await self._activity(
                InventoryActivities.ship_stock,
                ShipStock(order_id=self._id, warehouse=parcel.warehouse),
                f"deduct shipped stock in {parcel.warehouse}",
            )
        if parcel.status == "requested" and parcel.lines:
            await self._activity(
                OrderActivities.close_shipment_request,
                ShipStock(order_id=self._id, warehouse=parcel.warehouse),
                f"close the shipment request to {parcel.warehouse}",
            )
        parcel.status, parcel.carrier, parcel.tracking_number = "shipped", carrier, tracking_number
        parcel.shipped_at = workflow.now()
        if not self._parcels.unshipped():
            self._timers.pop("ship_by", None)
        self._record("shipped", f"{carrier} {tracking_number}: {parcel.describe()}")
        self._notify(NotificationKind.ORDER_SHIPPED, parcel)

    async def _do_track(self, update: TrackingUpdate) -> None:
        parcel, reason = self._parcels.for_tracking(update.tracking_number)
        if parcel is None:
            raise Refused(reason or "no parcel to track")
        carrier_time = f"carrier time {update.at.isoformat()}"
        detail = f"{parcel.tracking_number}: {update.detail + ' ' if update.detail else ''}({carrier_time})"
        if update.status == "in_transit":
            self._move(Command.IN_TRANSIT)
            parcel.status = "in_transit"
            self._record("in_transit", detail)
            return
        command = self._parcels.deliver_command(parcel)
        self._move(command)
        parcel.status, parcel.delivered_at = "delivered", workflow.now()
        if command == Command.DELIVER:
            self._confirm_by = workflow.now() + self._policy.confirm_window
            self._timers["confirm_by"] = self._confirm_by
        self._record("delivered", detail)

    async def _do_confirm_receipt(self) -> None:
        self._move(Command.CONFIRM_RECEIPT)
        self._timers.pop("confirm_by", None)
        self._record("completed", "buyer confirmed receipt")

    async def _cancel(self, reason: str, command: Command) -> None:
        """Cancel with compensation in reverse order of what was done: stock first, then money."""
        self._move(command, dry_run=True)
        released = await self._activity(
            InventoryActivities.release_stock, ReleaseStock(order_id=self._id), "release stock"
        )
        if released:
            self._record("stock_released", f"{released} unit(s) reserved or locked for the order released")
        for parcel in self._parcels.requested():
            await self._withdraw(parcel, reason)
        if self._payment is not None:
            refund_id = await self._activity(
                OrderActivities.record_refund,
                RecordRefund(
                    order_id=self._id,
                    payment_id=self._payment.payment_id,
                    amount=self._payment.amount,
                    currency=self._payment.currency,
                    reason=reason,
                ),
                "record refund",
            )
            self._record(
                "refund_recorded", f"{self._payment.amount} {self._payment.currency} owed back ({refund_id})"
            )
        self._move(command)
        self._cancel_reason = reason
        self._timers.clear()
        self._payment_due_at = None
        self._waiting_for_restock = False
        self._held_since = None
        self._record("cancelled", reason)
        self._notify(NotificationKind.ORDER_CANCELLED)

    async def _withdraw(self, parcel: Parcel, reason: str) -> None:
        await self._activity(
            OrderActivities.cancel_shipment_request,
            CancelShipmentRequest(order_id=self._id, warehouse=parcel.warehouse, reason=reason),
            f"withdraw the shipment request to {parcel.warehouse}",
        )
        parcel.status = "withdrawn"
        self._record("shipment_request_withdrawn", f"{parcel.warehouse}: {reason}")

    # ------------------------------------------------------------------ operator steps
    async def _do_operate(self, request: OperatorAction, action_id: str) -> None:
        # Re-checked here: another command may have changed the order since the validator ran.
        reason = action_refusal(self._view(), request, workflow.now())
        if reason is not None:
            raise Refused(reason)
        action, params = request.action, request.params
        detail = ""
        if action == Action.HOLD:
            self._held_since = workflow.now()
            self._hold_reason = request.reason
        elif action == Action.RELEASE:
            detail = self._release_hold()
        elif action == Action.CANCEL:
            await self._cancel(request.reason, Command.CANCEL)
        elif action == Action.EXTEND_PAYMENT:
            assert params.until is not None
            self._payment_due_at = params.until
            self._timers["payment_timeout"] = params.until
            detail = f"payment now due by {params.until.isoformat()}"
        elif action == Action.CHANGE_ADDRESS:
            assert params.address is not None
            detail = await self._change_address(params.address)
        elif action == Action.REASSIGN_WAREHOUSE:
            assert params.warehouse is not None
            detail = await self._reassign(params.warehouse)
        elif action == Action.RESOLVE_EXCEPTION:
            if params.resolution == "cancel-and-refund":
                await self._cancel(request.reason, Command.CANCEL)
            else:
                self._waiting_for_restock = True
                self._timers["restock_check"] = workflow.now()
                detail = f"waiting for restock, checked every {self._policy.restock_check_every}"
        elif action == Action.RETRY:
            self._move(Command.RETRY)
            detail = f"retrying after {self._exception_reason}"
            self._exception_reason = None
            self._waiting_for_restock = False
            self._timers.pop("restock_check", None)
        elif action == Action.MARK_SHIPPED:
            assert params.carrier is not None
            assert params.tracking_number is not None
            await self._mark_shipped(params.carrier, params.tracking_number)
        elif action == Action.NOTE:
            detail = params.text or ""
        self._record(
            f"operator_{action.value.replace('-', '_')}",
            f"{request.actor}: {request.reason}" + (f" ({detail})" if detail else ""),
        )
        await self._activity(
            OrderActivities.record_audit,
            AuditEntry(
                order_id=self._id,
                action_id=action_id,
                action=action.value,
                actor=request.actor,
                reason=request.reason,
                params=request.params.model_dump(mode="json", exclude_none=True),
                at=workflow.now(),
            ),
            "write audit trail",
        )

    async def _mark_shipped(self, carrier: str, tracking_number: str) -> None:
        """A parcel left outside orderflow: every parcel not yet shipped goes with it."""
        self._move(Command.MARK_SHIPPED, dry_run=True)
        if not self._parcels.active:  # nothing was locked: the parcel carried stock from elsewhere
            self._parcels = Parcels([Parcel("outside orderflow", [])])
        for parcel in self._parcels.unshipped():
            await self._ship_parcel(parcel, carrier, tracking_number)
        self._move(Command.MARK_SHIPPED)
        self._waiting_for_restock = False
        self._exception_reason = None
        self._timers.pop("restock_check", None)

    def _release_hold(self) -> str:
        """Deadlines that fell due during the hold are handled once, as the docs describe."""
        assert self._held_since is not None
        now = workflow.now()
        held = now - self._held_since
        self._held_since = None
        self._hold_reason = None
        missed = sorted(
            (due, name)
            for name, due in self._timers.items()
            if name.startswith("payment_reminder_") and due <= now
        )
        if "payment_timeout" in self._timers:
            latest = self._created_at + MAX_PAYMENT_HOLD
            self._payment_due_at = min(self._timers["payment_timeout"] + held, latest)
            self._timers["payment_timeout"] = self._payment_due_at
        # One catch-up reminder, not a burst; none when the order is cancelled at once anyway.
        cancelled_now = self._payment_due_at is not None and self._payment_due_at <= now
        for _, name in missed if cancelled_now else missed[:-1]:
            del self._timers[name]
        if "confirm_by" in self._timers:
            self._confirm_by = self._timers["confirm_by"] + held
            self._timers["confirm_by"] = self._confirm_by
        return f"held for {held}"

    async def _change_address(self, address: Address) -> str:
        self._order = self._order.model_copy(update={"shipping_address": address})
        if self._parcels.requested():
            await self._activity(
                OrderActivities.change_shipment_address,
                ChangeShipmentAddress(order_id=self._id, address=address),
                "send the new address to the warehouse",
            )
        return f"ship to {address.line1}, {address.postal_code} {address.city}, {address.country}"

    async def _reassign(self, warehouse: str) -> str:
        old = self._parcels.label
        generation = self._lock_generation + 1
        lock = await self._request_lock(
            f"lock stock in {warehouse}", warehouse=warehouse, generation=generation
        )
        if not lock.locked:
            short = ", ".join(f"{s.sku} {s.available}/{s.requested}" for s in lock.shortages)
            raise Refused(f"{warehouse} cannot fill every line ({short}); stock stays where it was")
        self._lock_generation = generation
        for parcel in self._parcels.requested():
            await self._withdraw(parcel, f"moved to {warehouse}")
        self._placed_in(lock, Command.REASSIGN_WAREHOUSE)
        return f"stock moved from {old or 'nowhere'} to {warehouse}"

    # ------------------------------------------------------------------ helpers
    def _send_reminder(self, number: int) -> None:
        offset = self._policy.reminder_offsets[number - 1]
        self._reminders_sent += 1
        self._record(
            "payment_reminder",
            f"reminder {number} of {len(self._policy.reminder_offsets)} ({presentation.hours(offset)}): "
            f"{presentation.REMINDER_NAMES[number - 1]} sent to {self._order.customer.email}",
        )
        self._notify(PAYMENT_REMINDERS[number - 1])

    def _notify(self, kind: NotificationKind, parcel: Parcel | None = None) -> None:
        """Customer mail runs beside the order: a slow mail server never holds the order up."""
        notify = Notify(
            order_id=self._id,
            kind=kind,
            reference=parcel.warehouse if parcel and len(self._parcels.active) > 1 else None,
            customer=self._order.customer,
            channel_order_id=self._order.channel_order_id,
            lines=self._order.lines,
            total=self._order.total,
            currency=self._order.currency,
            cancel_reason=self._cancel_reason,
            carrier=parcel.carrier if parcel else None,
            tracking_number=parcel.tracking_number if parcel else None,
        )

        async def send() -> None:
            try:
                await workflow.execute_activity_method(
                    NotificationActivities.notify_customer,
                    notify,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=NOTIFY_RETRY,
                    summary=f"email {kind.value} to the buyer",
                    priority=self._task_priority(),
                )
            except ActivityError as err:
                self._record("notification_failed", f"{kind.value}: {err.cause or err}")

        self._notifications.append(asyncio.create_task(send()))

    def _move(self, command: Command, *, dry_run: bool = False) -> None:
        new = next_status(self._status, command)
        if not dry_run and new != self._status:
            self._status = new
            self._status_since = workflow.now()

    def _record(self, kind: str, detail: str = "") -> None:
        self._updated_at = workflow.now()
        self._timeline.append(TimelineEvent(at=self._updated_at, kind=kind, detail=detail))
        workflow.logger.info(
            "order_%s", kind, extra={"order_id": self._id, "status": self._status.value, "detail": detail}
        )

    def _count_exception(self) -> None:
        """Metrics from workflow code are not emitted during replay: each exception counts once."""
        counter = workflow.metric_meter().create_counter(
            ORDER_EXCEPTIONS, "Orders that went to exception", "1"
        )
        counter.add(1, {"reason": self._exception_reason or "unknown"})

    def _task_priority(self) -> Priority:
        return Priority(priority_key=self._priority.key)

    async def _activity(self, method: Any, arg: Any, summary: str) -> Any:
        return await workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            summary=summary,
            priority=self._task_priority(),
        )

    async def _step(self, step: str, method: Any, arg: Any, summary: str) -> Any:
        """An automatic step with bounded retries: giving up raises StepFailed, not a hung order."""
        try:
            return await workflow.execute_activity_method(
                method,
                arg,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=STEP_RETRY,
                summary=summary,
                priority=self._task_priority(),
            )
        except ActivityError as err:
            raise StepFailed(step, err.cause or err) from err

    async def _publish(self) -> None:
        """Project the view to the read model and show the Web UI where the order stands."""
        view = self._view()
        next_timer = min(self._timers.items(), key=lambda item: item[1]) if self._timers else None
        workflow.set_current_details(presentation.current_details(view, next_timer, self._policy))
        self._upsert_search_attributes(presentation.search_attributes(view))
        try:
            await workflow.execute_local_activity_method(
                OrderActivities.project_order,
                view,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=PROJECTION_RETRY,
                summary="project order to read model",
            )
        except ActivityError as err:
            # The read model lags; the order itself must go on. The next change projects again.
            workflow.logger.error("projection_failed", extra={"order_id": self._id, "error": str(err.cause)})

    def _upsert_search_attributes(self, wanted: dict[str, Any]) -> None:
        """Upsert only what changed since the last time: fewer history events per order."""
        changed = {k: v for k, v in wanted.items() if self._published_attributes.get(k, ...) != v}
        if not changed:
            return
        keys = {key.name: key for key in sa.ALL}
        workflow.upsert_search_attributes(
            [keys[k].value_set(v) if v is not None else keys[k].value_unset() for k, v in changed.items()]
        )
        self._published_attributes.update(changed)

    def _view(self) -> OrderView:
        order = self._order
        return OrderView(
            order_id=self._id,
            channel=order.channel,
            channel_order_id=order.channel_order_id,
            status=self._status,
            customer=order.customer,
            shipping_address=order.shipping_address,
            lines=order.lines,
            total=order.total,
            currency=order.currency,
            created_at=self._created_at,
            updated_at=self._updated_at,
            warehouse=self._parcels.label,
            payment=self._payment,
            shipments=self._parcels.views(),
            priority=self._priority.key,
            priority_why=self._priority.why,
            payment_due_at=self._payment_due_at,
            hold_why=self._hold_why,
            ship_by=self._ship_by,
            confirm_by=self._confirm_by,
            ship_late=self._ship_late,
            reminders_sent=self._reminders_sent,
            cancel_reason=self._cancel_reason,
            exception_reason=self._exception_reason,
            status_since=self._status_since,
            on_hold=self._held_since is not None,
            held_since=self._held_since,
            hold_reason=self._hold_reason,
            waiting_for_restock=self._waiting_for_restock,
            timeline=list(self._timeline),
        )
