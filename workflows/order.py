"""OrderWorkflow: one durable workflow per order, the single writer of that order's state.

Updates validate a command against domain rules and queue it; the main loop is the only place that
runs side effects, one command at a time, then takes the automatic next step (`_advance`), then
sleeps until the next deadline (workflows/deadlines.py, fixed from workflow.now(); a hold pauses them
all), fires what is due, and continues as new when the history grows. What it orchestrates lives
beside it: the order's state (state.py), its steps (fulfilment.py, each activity run by steps.py),
operator actions (actions.py), customer mail (customer_mail.py) and the projection (projection.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from core.metrics import ORDERS_PLACED
    from domain.humanize import moment
    from domain.models import (
        TERMINAL_STATUSES,
        CancelOrder,
        ConfirmPayment,
        ConfirmReceipt,
        ConfirmShipment,
        OrderStatus,
        OrderView,
        PendingCommand,
        RestockCheck,
        StartOrder,
        TrackingUpdate,
    )
    from domain.notifications import CancelKind
    from domain.operator import OperatorAction, action_refusal, missing_params
    from domain.transitions import Command, Refused, refusal

    from workflows import presentation
    from workflows.actions import OperatorActions
    from workflows.customer_mail import CustomerMail
    from workflows.deadlines import Deadline, Timer
    from workflows.fulfilment import Fulfilment
    from workflows.projection import Projection
    from workflows.shop_calls import ShopCalls
    from workflows.state import LiveOrder
    from workflows.steps import (
        StepFailed,
        StepHooks,
        StepInterrupted,
        Steps,
    )

S = OrderStatus
# Before continuing as new, in-flight customer mails get this long to finish; the rest are carried.
NOTIFY_SETTLE = timedelta(minutes=1)


def _refuse(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="Refused", non_retryable=True)


@dataclass
class _Job:
    """A command accepted by an update, waiting for the main loop to carry it out."""

    name: str
    run: Callable[[], Awaitable[None]]
    accepted_at: datetime
    done: bool = False
    answered: bool = False  # answered as pending while a step it waits for keeps failing
    error: str | None = None


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, start: StartOrder) -> None:
        self._state = LiveOrder.start(start, workflow.now())
        if self._state.priority.warning:  # e.g. no exchange rate for the order's currency
            workflow.logger.warning(
                "priority_value_unknown",
                extra={"order_id": start.order_id, "detail": self._state.priority.warning},
            )
        self._placed = False
        self._inbox: list[_Job] = []
        self._current: _Job | None = None
        self._mail = CustomerMail(self._state, self._task_priority())
        self._projection = Projection(self._state, self._task_priority())
        self._steps = Steps(
            StepHooks(
                patience=self._state.policy.step_patience,
                priority=self._task_priority(),
                record=self._state.record,
                publish=self._publish,
                has_commands=lambda: bool(self._inbox),
                answer_pending=self._answer_pending,
            )
        )
        self._shop = ShopCalls(self._state, self._task_priority())
        self._fulfil = Fulfilment(self._state, self._steps, self._mail, self._publish, self._shop)
        self._actions = OperatorActions(self._state, self._steps, self._fulfil, self.view)

    # ------------------------------------------------------------------ main loop
    @workflow.run
    async def run(self, start: StartOrder) -> OrderView:
        order = self._state.order
        if start.carried is None:
            self._state.record(
                "placed",
                f"{order.channel} order {order.channel_order_id}: {len(order.lines)} line(s), "
                f"total {order.total} {order.currency}; priority {self._state.priority.key} "
                f"({', '.join(self._state.priority.why)})",
            )
            await self._fulfil.reserve_and_arm_payment_timers()
            placed = workflow.metric_meter().create_counter(ORDERS_PLACED, "Orders placed", "1")
            placed.add(1, {"channel": order.channel.value})
        else:
            self._mail.resend(start.carried.notifications)
        self._placed = True
        await self._publish()
        while self._state.status not in TERMINAL_STATUSES or self._inbox:
            await self._wait_for_work()
            while self._inbox:
                job = self._inbox.pop(0)
                self._current = job
                try:
                    await job.run()
                    await self._advance()
                except Refused as refused:
                    job.error = refused.reason
                except StepFailed as failed:
                    job.error = self._contain(failed)
                finally:
                    self._current = None
                    job.done = True
                if job.answered and job.error is not None:  # its caller only heard "pending"
                    self._state.record("command_refused", f"{job.name}: {job.error}")
                await self._publish()
            if self._state.held_since is None:
                fired = await self._fire_due_timers()
                if await self._advance() or fired:
                    await self._publish()
            if self._history_is_long():
                await self._continue_as_new()
        events = len(self._state.timeline)
        await self._mail.finish()
        await self._shop.finish()  # a cancelled order's shop and refund calls end before it does
        if len(self._state.timeline) != events:  # a notification or shop call ended after the projection
            await self._publish()
        while self._projection.lag is not None:  # the read model must see how the order ended
            due = self._state.deadlines.due_at(Deadline.PROJECT) or workflow.now()
            await workflow.sleep(
                max(due - workflow.now(), timedelta(seconds=1)), summary="catch up the read model"
            )
            await self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view()

    async def _wait_for_work(self) -> None:
        if self._inbox:
            return
        upcoming = self._state.deadlines.next()
        if upcoming is None or self._state.held_since is not None:
            await workflow.wait_condition(lambda: bool(self._inbox))
            return
        timer, due = upcoming
        timeout = due - workflow.now()
        if timeout <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):  # the deadline came: _fire_due_timers acts on it
            await workflow.wait_condition(
                lambda: bool(self._inbox),
                timeout=timeout,
                timeout_summary=timer.label(self._state.policy),
            )

    async def _fire_due_timers(self) -> bool:
        now = workflow.now()
        fired = False
        for timer, due in self._state.deadlines.due_by(now):
            if timer not in self._state.deadlines or self._state.status in TERMINAL_STATUSES:
                continue
            self._state.deadlines.disarm(timer)
            fired = True
            try:
                await self._fire(timer, due)
            except StepFailed as failed:
                self._contain(failed)
            except Refused as refused:  # the order moved on meanwhile: nothing left to do
                self._state.record("deadline_skipped", f"{timer.label(self._state.policy)}: {refused}")
        return fired

    async def _fire(self, timer: Timer, due: datetime) -> None:
        kind = timer.kind
        if kind == Deadline.PAYMENT_REMINDER:
            self._fulfil.send_reminder(timer.number)
        elif kind == Deadline.PAYMENT_TIMEOUT:
            await self._fulfil.cancel_order(
                "payment_timeout", Command.PAYMENT_TIMEOUT, kind=CancelKind.PAYMENT_TIMEOUT
            )
        elif kind == Deadline.SHIP_BY:
            self._state.ship_late = True
            late = self._state.parcels.unshipped()
            for parcel in late:
                parcel.late = True
            where = ", ".join(p.warehouse for p in late) or "the warehouse"
            self._state.record(
                "ship_deadline_missed",
                f"not shipped by {moment(due)} ({presentation.hours(self._state.policy.ship_within)} "
                f"after payment); still waiting for {where}",
            )
        elif kind == Deadline.CONFIRM_BY:
            self._state.move(Command.AUTO_COMPLETE)
            self._state.record("completed", "confirmation window ended without a buyer complaint")
        elif kind == Deadline.RESTOCK_CHECK:
            await self._fulfil.try_restock()
        # PROJECT: nothing to do here; the loop projects after any deadline fired

    async def _advance(self) -> bool:
        """Take the automatic next step(s) the status calls for, unless the order is on hold."""
        progressed = False
        while self._state.held_since is None:
            try:
                if self._state.status == S.PAID:
                    await self._fulfil.lock_stock()
                elif (
                    self._state.status in (S.STOCK_LOCKED, S.PARTIALLY_SHIPPED)
                    and self._state.parcels.to_request()
                ):
                    await self._fulfil.request_shipment(self._state.parcels.to_request()[0])
                else:
                    break
            except StepInterrupted:
                break  # a command arrived while the step waited to retry: it goes first
            except StepFailed as failed:
                self._contain(failed)
            progressed = True
        return progressed

    def _contain(self, failed: StepFailed) -> str:
        """A step failed for good: the order goes to exception, saying why and what can be done."""
        if failed.handled:
            return f"{failed}; the order is in exception for an operator"
        failed.handled = True
        self._state.to_exception(f"{failed.step}_failed")
        self._state.record(
            "step_failed",
            f"{failed.summary} failed: {failed.reason}. Fix the cause, then retry the order, or cancel it",
        )
        return f"{failed.summary} failed: {failed.reason}; the order is in exception for an operator"

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._state.policy.history_limit
        )

    async def _continue_as_new(self) -> None:
        """Start a fresh history carrying the whole state, once no command is under way."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._inbox:
            return  # a command arrived meanwhile: handle it first, continue as new after
        # Shop calls may retry for hours: a command arriving meanwhile goes first, never waits for them.
        yields = workflow.patched("settle-yields-to-commands")
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (self._mail.all_done() and self._shop.all_done()) or (yields and bool(self._inbox)),
                timeout=NOTIFY_SETTLE,
                timeout_summary="let customer mails and shop calls in flight finish",
            )
        if self._inbox or not workflow.all_handlers_finished():
            return
        self._shop.abandon()
        workflow.logger.info(
            "order_continue_as_new", extra={"order_id": self._state.order_id, "run": self._state.runs}
        )
        workflow.continue_as_new(
            StartOrder(
                order_id=self._state.order_id,
                order=self._state.order,
                policy=self._state.policy,
                carried=self._state.carry(self._mail.unsent()),
            )
        )

    # ------------------------------------------------------------------ updates from integrations
    @workflow.update
    async def placed(self) -> OrderView:
        """The view once placement is done (stock reserved, payment deadline set): for the API."""
        await workflow.wait_condition(lambda: self._placed)
        return self._view()

    @workflow.update
    async def pay(self, payment: ConfirmPayment) -> OrderView:
        if self._state.payment and self._state.payment.payment_id == payment.payment_id:
            return self._view()  # the same payment again (webhook retry): nothing changes
        return await self._submit("pay", lambda: self._fulfil.pay(payment))

    @pay.validator
    def _validate_pay(self, payment: ConfirmPayment) -> None:
        if self._state.payment and self._state.payment.payment_id == payment.payment_id:
            return
        if self._state.status == S.EXCEPTION and self._state.payment is None:
            raise _refuse(
                f"the order is in exception ({self._state.exception_reason}) and takes payment once an "
                "operator has resolved it; the order stays unpaid"
            )
        self._check(Command.PAY)
        total, currency = self._state.order.total, self._state.order.currency
        if payment.currency != currency or payment.amount != total:
            raise _refuse(
                f"payment of {payment.amount} {payment.currency} does not match the order total "
                f"{total} {currency}; the order stays unpaid"
            )

    @workflow.update
    async def ship(self, shipment: ConfirmShipment) -> OrderView:
        return await self._submit("ship", lambda: self._fulfil.ship(shipment))

    @ship.validator
    def _validate_ship(self, shipment: ConfirmShipment) -> None:
        self._check(Command.SHIP)
        parcel, reason = self._state.parcels.for_shipment(shipment.warehouse)
        if parcel is None:
            raise _refuse(reason or "no parcel to ship")

    @workflow.update
    async def track(self, update: TrackingUpdate) -> OrderView:
        return await self._submit("track", lambda: self._fulfil.track(update))

    @track.validator
    def _validate_track(self, update: TrackingUpdate) -> None:
        self._check(Command.DELIVER_PART if update.status == "delivered" else Command.IN_TRANSIT)
        parcel, reason = self._state.parcels.for_tracking(update.tracking_number)
        if parcel is None:
            raise _refuse(reason or "no parcel to track")
        if parcel.status == "delivered":
            raise _refuse(f"the parcel {parcel.tracking_number} was already delivered")

    @workflow.update
    async def confirm_receipt(self, _: ConfirmReceipt) -> OrderView:
        return await self._submit("confirm_receipt", self._fulfil.confirm_receipt)

    @confirm_receipt.validator
    def _validate_confirm_receipt(self, _: ConfirmReceipt) -> None:
        self._check(Command.CONFIRM_RECEIPT)

    @workflow.update
    async def cancel(self, request: CancelOrder) -> OrderView:
        """A cancel from the channel (the buyer cancelled there); operators use `operate`."""
        return await self._submit(
            "cancel",
            lambda: self._fulfil.cancel_order(
                request.reason,
                Command.CANCEL,
                kind=CancelKind.BUYER_REQUESTED,
                message=request.customer_message,
                origin=request.origin,
            ),
        )

    @cancel.validator
    def _validate_cancel(self, request: CancelOrder) -> None:
        self._check(Command.CANCEL)

    @workflow.update
    async def restock(self, _: RestockCheck) -> OrderView:
        """Stock may have arrived for an out-of-stock order: try its lock now (called in priority order)."""
        return await self._submit("restock", self._fulfil.try_restock)

    @restock.validator
    def _validate_restock(self, _: RestockCheck) -> None:
        if self._state.status != S.EXCEPTION or not self._state.waiting_for_restock:
            raise _refuse("the order is not waiting for stock")

    # ------------------------------------------------------------------ operator actions
    @workflow.update
    async def operate(self, request: OperatorAction) -> OrderView:
        info = workflow.current_update_info()
        action_id = info.id if info else str(workflow.uuid4())
        return await self._submit(request.action.value, lambda: self._actions.carry_out(request, action_id))

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
        reason = refusal(self._state.status, command)
        if reason is not None:
            raise _refuse(reason)

    async def _submit(self, name: str, run: Callable[[], Awaitable[None]]) -> OrderView:
        """Queue the command for the main loop and answer when it is done, or at once (the view
        lists it as pending) while a step it must wait for keeps failing: never an update that hangs."""
        job = _Job(name, run, accepted_at=workflow.now())
        self._inbox.append(job)
        await workflow.wait_condition(lambda: job.done or job.answered or self._steps.blocked)
        job.answered = not job.done
        if job.error is not None:
            raise _refuse(job.error)
        return self._view()

    def _answer_pending(self) -> None:
        if self._current is not None:
            self._current.answered = True

    def _task_priority(self) -> Priority:
        return Priority(priority_key=self._state.priority.key)

    async def _publish(self) -> None:
        await self._projection.publish(self._view())

    def _view(self) -> OrderView:
        steps = self._steps
        return self._state.view(
            pending=self._pending_commands(), waiting_on=steps.waiting_on, waiting_since=steps.waiting_since
        )

    def _pending_commands(self) -> list[PendingCommand]:
        jobs = ([self._current] if self._current and not self._current.done else []) + self._inbox
        return [
            PendingCommand(
                command=job.name,
                accepted_at=job.accepted_at,
                waiting_on=self._steps.waiting_on
                if job is self._current
                else f"queued behind {jobs[0].name}",
            )
            for job in jobs
        ]
