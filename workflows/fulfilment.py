"""The order's own steps, each run as activities through Steps: reserve and set the payment
deadline, take payment, lock stock, ask warehouses to ship, record shipments and deliveries, and
cancel with compensation. OrderWorkflow decides when; these say how."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.orders import OrderActivities
    from domain.effects import (
        CancelShipmentRequest,
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
    from domain.humanize import duration, moment
    from domain.models import (
        CancelOrigin,
        ConfirmPayment,
        ConfirmShipment,
        OrderStatus,
        PaymentInfo,
        TrackingUpdate,
    )
    from domain.notifications import PAYMENT_REMINDERS, CancelKind, NotificationKind
    from domain.policy import payment_hold_for
    from domain.transitions import Command, Refused

    from workflows import presentation
    from workflows.customer_mail import CustomerMail
    from workflows.deadlines import PAYMENT_DEADLINES, Deadline, Timer
    from workflows.parcels import Parcel
    from workflows.shop_calls import ShopCalls
    from workflows.state import LiveOrder
    from workflows.steps import StepFailed, Steps, refusing

S = OrderStatus


class Fulfilment:
    def __init__(
        self,
        state: LiveOrder,
        steps: Steps,
        mail: CustomerMail,
        publish: Callable[[], Awaitable[None]],
        shop: ShopCalls,
    ) -> None:
        self._state = state
        self._steps = steps
        self._mail = mail
        self._shop = shop  # calls back to the order's shop and Stripe, beside the order
        self._publish = publish  # orders paid before patch publish-once-per-command projected twice

    async def reserve_and_arm_payment_timers(self, since: datetime | None = None) -> None:
        """Reserve stock for the unpaid order and choose its payment hold from the stock pressure.

        A SKU no warehouse has ever stocked sends the order to exception `unknown_sku` instead: no
        stock pressure tells anything about it, and no payment deadline runs until it is mapped.
        `since`: when the payment hold starts (placement, or the retry after the SKU was mapped)."""
        order = self._state.order
        try:
            reservation: Reservation = await self._steps.run(
                "reserve_stock",
                InventoryActivities.reserve_stock,
                ReserveStock(
                    order_id=self._state.order_id,
                    lines=order.lines,
                    destination=order.shipping_address.country,
                    reserve=self._state.policy.reserve_stock,
                ),
                "reserve stock for the unpaid order",
            )
        except StepFailed as failed:
            reservation = Reservation(reserved=False)
            self._state.record(
                "reservation_failed", f"{failed}; the order waits unreserved, stock is allocated on payment"
            )
        if reservation.unknown:
            self._state.unknown_sku(reservation.unknown)
            return
        if self._state.policy.reserve_stock and reservation.reserved:
            where = "; ".join(Parcel(p.warehouse, p.lines).describe() for p in reservation.parts)
            self._state.record("stock_reserved", where)
        elif self._state.policy.reserve_stock:
            self._state.record(
                "stock_not_reserved", "not enough stock to reserve; it is allocated on payment"
            )
        hold, why = payment_hold_for(self._state.policy, reservation.scarce, reservation.tight)
        self._state.hold_why = why
        start = since or self._state.created_at
        for number, offset in enumerate(self._state.policy.reminder_offsets, start=1):
            if offset < hold:
                self._state.deadlines.arm(Timer.reminder(number), start + offset)
        self._state.payment_due_at = self._state.deadlines.arm(Deadline.PAYMENT_TIMEOUT, start + hold)
        self._state.record(
            "payment_due", f"by {moment(self._state.payment_due_at)} (in {duration(hold)}): {why}"
        )

    async def pay(self, payment: ConfirmPayment) -> None:
        self._state.move(Command.PAY, dry_run=True)
        with refusing("the order stays unpaid", name_step=False):
            await self._steps.run(
                "record_payment",
                OrderActivities.record_payment,
                RecordPayment(order_id=self._state.order_id, payment=payment),
                "record payment",
            )
        now = workflow.now()
        self._state.move(Command.PAY)
        self._state.payment = PaymentInfo(
            payment_id=payment.payment_id,
            amount=payment.amount,
            currency=payment.currency,
            method=payment.method,
            paid_at=now,
        )
        self._state.deadlines.disarm_kinds(*PAYMENT_DEADLINES)
        self._state.payment_due_at = None
        self._state.ship_by = self._state.deadlines.arm(
            Deadline.SHIP_BY, now + self._state.policy.ship_within
        )
        self._state.record("paid", f"{payment.amount} {payment.currency} by {payment.method}")
        if not workflow.patched("publish-once-per-command"):
            await self._publish()  # orders started before: the loop publishes after the lock too

    async def request_lock(
        self, summary: str, warehouse: str | None = None, generation: int = 0, *, interruptible: bool = False
    ) -> StockLock:
        lock: StockLock = await self._steps.run(
            "lock_stock",
            InventoryActivities.lock_stock,
            LockStock(
                order_id=self._state.order_id,
                lines=self._state.order.lines,
                destination=self._state.order.shipping_address.country,
                generation=generation,
                warehouse=warehouse,
            ),
            summary,
            interruptible=interruptible,
        )
        return lock

    async def lock_stock(self) -> None:
        lock = await self.request_lock(
            "allocate and lock stock", generation=self._state.lock_generation, interruptible=True
        )
        if lock.locked:
            self._state.placed_in(lock, Command.LOCK_STOCK)
            return
        if lock.unknown:  # still waits for restock: booking the SKU in wakes it by itself
            self._state.unknown_sku(lock.unknown)
            self._state.wait_for_restock()
            return
        self._state.move(Command.STOCK_SHORT)
        self._state.exception_reason = "out_of_stock"
        self._state.count_exception()
        self._state.wait_for_restock()
        short = ", ".join(f"{s.sku} {s.available}/{s.requested}" for s in lock.shortages)
        advice = "; ".join(s.detail for s in lock.suggestions)
        self._state.record(
            "out_of_stock", f"short: {short or 'nothing to ship from'}; nothing locked. {advice}"
        )

    async def request_shipment(self, parcel: Parcel) -> None:
        assert self._state.ship_by is not None
        await self._steps.run(
            "request_shipment",
            OrderActivities.request_shipment,
            RequestShipment(
                order_id=self._state.order_id,
                warehouse=parcel.warehouse,
                lines=[
                    self._state.order.lines[item.line_no].model_copy(update={"quantity": item.quantity})
                    for item in parcel.lines
                ],
                address=self._state.order.shipping_address,
                ship_by=self._state.ship_by,
            ),
            f"ask {parcel.warehouse} to ship",
            interruptible=True,
        )
        parcel.status = "requested"
        self._state.record("shipment_requested", f"{parcel.describe()}, by {moment(self._state.ship_by)}")

    async def try_restock(self) -> None:
        """Out of stock: try the lock again; if still short, look again later."""
        if self._state.status != S.EXCEPTION or not self._state.waiting_for_restock:
            return
        every = self._state.restock_every or self._state.policy.restock_check_every
        try:
            lock = await self.request_lock("lock stock after restock", generation=self._state.lock_generation)
        except StepFailed as failed:
            lock = None
            self._state.record("restock_check_failed", f"{failed}; the order keeps waiting for stock")
        if lock is not None and lock.locked:
            self._state.placed_in(lock, Command.RESTOCKED)
            return
        # Still short: look again later, less and less often (a stock arrival wakes the order anyway).
        self._state.restock_every = min(every * 2, self._state.policy.restock_check_max)
        self._state.deadlines.arm(Deadline.RESTOCK_CHECK, workflow.now() + self._state.restock_every)

    async def ship(self, shipment: ConfirmShipment) -> None:
        parcel, reason = self._state.parcels.for_shipment(shipment.warehouse)
        if parcel is None:
            raise Refused(reason or "no parcel to ship")
        command = self._state.parcels.ship_command(parcel)
        self._state.move(command, dry_run=True)
        with refusing("the shipment is not recorded yet: send it again"):
            await self.ship_parcel(parcel, shipment.carrier, shipment.tracking_number)
        self._state.move(command)
        if self._state.held_since is not None:  # the goods left anyway: accept it, and say so loudly
            self._state.shipped_while_held = True
            self._state.record(
                "shipped_while_held",
                f"{parcel.warehouse} shipped {shipment.tracking_number} although the order is on hold "
                f"({self._state.hold_reason}); check with the warehouse and the buyer",
            )

    async def ship_parcel(
        self, parcel: Parcel, carrier: str, tracking_number: str, *, tell_shop: bool = True
    ) -> None:
        """The parcel left: its stock leaves the warehouse, its request closes, the buyer hears, and
        (unless `tell_shop` is False: the caller tells it about several parcels at once) the shop."""
        if parcel.lines:
            await self._steps.run(
                "ship_stock",
                InventoryActivities.ship_stock,
                ShipStock(order_id=self._state.order_id, warehouse=parcel.warehouse),
                f"deduct shipped stock in {parcel.warehouse}",
            )
        # A hold withdrew the request, but the warehouse shipped anyway: its record says shipped too.
        shipped_anyway = parcel.status == "locked" and self._state.held_since is not None
        if parcel.lines and (
            parcel.status == "requested"
            or (shipped_anyway and workflow.patched("close-request-shipped-while-held"))
        ):
            await self._steps.run(
                "close_shipment_request",
                OrderActivities.close_shipment_request,
                ShipStock(order_id=self._state.order_id, warehouse=parcel.warehouse),
                f"close the shipment request to {parcel.warehouse}",
            )
        parcel.status, parcel.carrier, parcel.tracking_number = "shipped", carrier, tracking_number
        parcel.shipped_at = workflow.now()
        if not self._state.parcels.unshipped():
            self._state.deadlines.disarm(Deadline.SHIP_BY)
        self._state.record("shipped", f"{carrier} {tracking_number}: {parcel.describe()}")
        self._mail.send(NotificationKind.ORDER_SHIPPED, parcel)
        if tell_shop:
            self.tell_shop([parcel], carrier, tracking_number)

    def tell_shop(self, parcels: list[Parcel], carrier: str, tracking_number: str) -> None:
        """One fulfilment on the shop for parcels that left under one tracking number."""
        # Orders shipped before this told no shop; the default shop (no shop_id) has nothing to call.
        if parcels and self._shop.shop_id is not None and workflow.patched("fulfil-on-shop"):
            self._shop.fulfil(parcels, carrier, tracking_number)

    async def track(self, update: TrackingUpdate) -> None:
        parcel, reason = self._state.parcels.for_tracking(update.tracking_number)
        if parcel is None:
            raise Refused(reason or "no parcel to track")
        carrier_time = f"carrier time {moment(update.at)}"
        detail = f"{parcel.tracking_number}: {update.detail + ' ' if update.detail else ''}({carrier_time})"
        if update.status == "in_transit":
            self._state.move(Command.IN_TRANSIT)
            parcel.status = "in_transit"
            self._state.record("in_transit", detail)
            return
        command = self._state.parcels.deliver_command(parcel)
        self._state.move(command)
        parcel.status, parcel.delivered_at = "delivered", workflow.now()
        if command == Command.DELIVER:
            self._state.confirm_by = self._state.deadlines.arm(
                Deadline.CONFIRM_BY, workflow.now() + self._state.policy.confirm_window
            )
        self._state.record("delivered", detail)

    async def confirm_receipt(self) -> None:
        self._state.move(Command.CONFIRM_RECEIPT)
        self._state.deadlines.disarm(Deadline.CONFIRM_BY)
        self._state.record("completed", "buyer confirmed receipt")

    async def cancel_order(
        self,
        reason: str,
        command: Command,
        *,
        kind: CancelKind | None = None,
        message: str | None = None,
        origin: CancelOrigin = "orderflow",
    ) -> None:
        """Cancel with compensation in reverse order of what was done: stock first, then money.

        Every compensation is idempotent, so a cancellation that stopped half-way (the order goes to
        exception `cancel_failed`) resumes where it stopped when an operator retries or cancels.
        `reason` is internal (timeline, audit, refund); the buyer is told `kind` in their language,
        or `message` when one was given. A resumed cancellation (no kind) keeps the first one's, and
        its `origin`: a cancel the store started ("channel") is not sent back to it."""
        self._state.move(command, dry_run=True)
        if kind is not None:
            self._state.cancel_kind, self._state.customer_message = kind, message
            self._state.cancel_origin = origin
        refund_id: str | None = None
        try:
            released = await self._steps.run(
                "release_stock",
                InventoryActivities.release_stock,
                ReleaseStock(order_id=self._state.order_id),
                "release stock",
            )
            if released:
                self._state.record(
                    "stock_released", f"{released} unit(s) reserved or locked for the order released"
                )
            for parcel in self._state.parcels.requested():
                await self.withdraw(parcel, reason)
            if self._state.payment is not None:
                refund_id = await self._steps.run(
                    "record_refund",
                    OrderActivities.record_refund,
                    RecordRefund(
                        order_id=self._state.order_id,
                        payment_id=self._state.payment.payment_id,
                        amount=self._state.payment.amount,
                        currency=self._state.payment.currency,
                        reason=reason,
                    ),
                    "record refund",
                )
                self._state.record(
                    "refund_recorded",
                    f"{self._state.payment.amount} {self._state.payment.currency} owed back ({refund_id})",
                )
        except StepFailed as failed:
            self._cancel_failed(reason, failed)
            raise
        if self._state.status == S.EXCEPTION and command != Command.CANCEL:
            command = Command.CANCEL  # a payment timeout resumed by an operator
        self._state.move(command)
        self._state.cancel_reason = reason
        self._state.cancel_pending = None
        self._state.failed_in = None
        self._state.deadlines.clear()
        self._state.payment_due_at = None
        self._state.stop_waiting_for_restock()
        self._state.held_since = None
        self._state.record("cancelled", reason)
        self._mail.send(NotificationKind.ORDER_CANCELLED)
        if self._shop.shop_id is None:
            return
        if self._state.cancel_origin == "channel":  # the store cancelled it and refunds its own
            self._state.record(
                "shop_not_called",
                f"cancelled on shop {self._shop.shop_id} already: nothing sent back to it"
                + ("; the store refunds the buyer itself" if refund_id is not None else ""),
            )
        # The shop's copy follows (and Stripe gives the money back); orders cancelled before did not.
        elif workflow.patched("cancel-on-shop"):
            self._shop.cancel(reason, refund_id)

    def _cancel_failed(self, reason: str, failed: StepFailed) -> None:
        """Half-cancelled: no deadline may fire any more, and an operator must see it."""
        failed.handled = True
        self._state.cancel_pending = reason
        self._state.deadlines.clear()
        self._state.payment_due_at = None
        self._state.stop_waiting_for_restock()
        self._state.to_exception("cancel_failed")
        self._state.record(
            "cancel_failed",
            f"cancelling ({reason}) stopped at {failed.summary}: {failed.reason}. Fix the cause, then "
            "retry the order: the "
            "cancellation resumes where it stopped",
        )

    async def withdraw(self, parcel: Parcel, reason: str, *, keep: bool = False) -> None:
        """Tell the warehouse not to ship. `keep`: the parcel stays the order's (a hold): it is
        requested again on release; otherwise its stock has gone or moved elsewhere."""
        await self._steps.run(
            "cancel_shipment_request",
            OrderActivities.cancel_shipment_request,
            CancelShipmentRequest(order_id=self._state.order_id, warehouse=parcel.warehouse, reason=reason),
            f"withdraw the shipment request to {parcel.warehouse}",
        )
        parcel.status = "locked" if keep else "withdrawn"
        self._state.record("shipment_request_withdrawn", f"{parcel.warehouse}: {reason}")

    def send_reminder(self, number: int) -> None:
        offsets = self._state.policy.reminder_offsets
        offset = offsets[number - 1]
        self._state.reminders_sent += 1
        self._state.record(
            "payment_reminder",
            f"reminder {number} of {len(offsets)} ({presentation.hours(offset)}): "
            f"{presentation.REMINDER_NAMES[number - 1]} sent to {self._state.order.customer.email}",
        )
        self._mail.send(PAYMENT_REMINDERS[number - 1])
