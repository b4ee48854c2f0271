"""Operator actions on one order: a table from Action to the handler that carries it out and returns
the detail the timeline shows after "<actor>: <reason>"; every action leaves an audit row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.orders import OrderActivities
    from domain.effects import AuditEntry, ChangeShipmentAddress, ReleaseStock
    from domain.humanize import duration, moment
    from domain.models import OrderStatus, OrderView
    from domain.notifications import CancelKind
    from domain.operator import Action, OperatorAction, action_refusal
    from domain.policy import MAX_PAYMENT_HOLD
    from domain.transitions import Command, Refused

    from workflows.deadlines import Deadline
    from workflows.fulfilment import Fulfilment
    from workflows.parcels import Parcel, Parcels
    from workflows.state import LiveOrder
    from workflows.steps import StepFailed, Steps, refusing

S = OrderStatus
Handler = Callable[[OperatorAction], Awaitable[str]]


class OperatorActions:
    def __init__(
        self, state: LiveOrder, steps: Steps, fulfilment: Fulfilment, view: Callable[[], OrderView]
    ) -> None:
        self._state = state
        self._steps = steps
        self._order = fulfilment
        self._view = view
        self._handlers: dict[Action, Handler] = {
            Action.HOLD: self._hold,
            Action.RELEASE: self._release,
            Action.CANCEL: self._cancel,
            Action.EXTEND_PAYMENT: self._extend_payment,
            Action.CHANGE_ADDRESS: self._change_address,
            Action.REASSIGN_WAREHOUSE: self._reassign,
            Action.RESOLVE_EXCEPTION: self._resolve_exception,
            Action.RETRY: self._retry,
            Action.MARK_SHIPPED: self._mark_shipped,
            Action.NOTE: self._note,
        }

    async def carry_out(self, request: OperatorAction, action_id: str) -> None:
        # Re-checked here: another command may have changed the order since the validator ran.
        reason = action_refusal(self._view(), request, workflow.now())
        if reason is not None:
            raise Refused(reason)
        action, state = request.action, self._state
        detail = await self._handlers[action](request)
        state.record(
            f"operator_{action.value.replace('-', '_')}",
            f"{request.actor}: {request.reason}" + (f" ({detail})" if detail else ""),
        )
        try:
            await self._steps.run(
                "record_audit",
                OrderActivities.record_audit,
                AuditEntry(
                    order_id=state.order_id,
                    action_id=action_id,
                    action=action.value,
                    actor=request.actor,
                    reason=request.reason,
                    params=request.params.model_dump(mode="json", exclude_none=True),
                    at=workflow.now(),
                ),
                "write audit trail",
            )
        except StepFailed as failed:  # the action is done; only its audit row is missing
            state.record("audit_failed", f"{failed}; the timeline above keeps the action")

    # ------------------------------------------------------------------ the handlers
    async def _hold(self, request: OperatorAction) -> str:
        """A hold pauses every deadline and stops the warehouse too: open requests are withdrawn,
        and sent again on release."""
        state = self._state
        state.held_since, state.hold_reason = workflow.now(), request.reason
        if not workflow.patched("hold-withdraws-shipments"):
            return ""
        withdrawn: list[str] = []
        for parcel in state.parcels.requested():
            try:
                await self._order.withdraw(parcel, f"on hold: {request.reason}", keep=True)
                withdrawn.append(parcel.warehouse)
            except StepFailed as failed:  # the order is held all the same: say who must not ship
                state.record(
                    "withdraw_failed", f"{failed}; tell {parcel.warehouse} not to ship this order while held"
                )
        return f"shipment request withdrawn from {', '.join(withdrawn)}" if withdrawn else ""

    async def _release(self, _: OperatorAction) -> str:
        """Deadlines that fell due during the hold are handled once, as the docs describe."""
        state = self._state
        assert state.held_since is not None
        now = workflow.now()
        held = now - state.held_since
        state.held_since = state.hold_reason = None
        state.deadlines.release_hold(held, now, payment_limit=state.created_at + MAX_PAYMENT_HOLD)
        if Deadline.PAYMENT_TIMEOUT in state.deadlines:
            state.payment_due_at = state.deadlines.due_at(Deadline.PAYMENT_TIMEOUT)
        if Deadline.CONFIRM_BY in state.deadlines:
            state.confirm_by = state.deadlines.due_at(Deadline.CONFIRM_BY)
        return f"held for {duration(held)}"

    async def _cancel(self, request: OperatorAction) -> str:
        kind, message = CancelKind.SELLER_CANCELLED, request.params.customer_message
        await self._order.cancel_order(request.reason, Command.CANCEL, kind=kind, message=message)
        return ""

    async def _extend_payment(self, request: OperatorAction) -> str:
        until = request.params.until
        assert until is not None
        self._state.payment_due_at = self._state.deadlines.arm(Deadline.PAYMENT_TIMEOUT, until)
        return f"payment now due by {moment(until)}"

    async def _change_address(self, request: OperatorAction) -> str:
        state, address = self._state, request.params.address
        assert address is not None
        if state.parcels.requested():
            with refusing("the address is unchanged"):
                await self._steps.run(
                    "change_shipment_address",
                    OrderActivities.change_shipment_address,
                    ChangeShipmentAddress(order_id=state.order_id, address=address),
                    "send the new address to the warehouse",
                )
        state.order = state.order.model_copy(update={"shipping_address": address})
        return f"ship to {address.line1}, {address.postal_code} {address.city}, {address.country}"

    async def _reassign(self, request: OperatorAction) -> str:
        state, warehouse = self._state, request.params.warehouse
        assert warehouse is not None
        old = state.parcels.label
        generation = state.lock_generation + 1
        with refusing("stock stays where it was"):
            lock = await self._order.request_lock(
                f"lock stock in {warehouse}", warehouse=warehouse, generation=generation
            )
        if not lock.locked:
            short = ", ".join(f"{s.sku} {s.available}/{s.requested}" for s in lock.shortages)
            raise Refused(f"{warehouse} cannot fill every line ({short}); stock stays where it was")
        state.lock_generation = generation
        for parcel in state.parcels.requested():
            try:
                await self._order.withdraw(parcel, f"moved to {warehouse}")
            except StepFailed as failed:  # the stock moved already: say who must not ship
                state.record("withdraw_failed", f"{failed}; tell {parcel.warehouse} not to ship this order")
        state.placed_in(lock, Command.REASSIGN_WAREHOUSE)
        return f"stock moved from {old or 'nowhere'} to {warehouse}"

    async def _resolve_exception(self, request: OperatorAction) -> str:
        state, params = self._state, request.params
        if params.resolution == "cancel-and-refund":
            short = state.exception_reason in ("out_of_stock", "unknown_sku")
            await self._order.cancel_order(
                request.reason,
                Command.CANCEL,
                kind=CancelKind.OUT_OF_STOCK if short else CancelKind.SELLER_CANCELLED,
                message=params.customer_message,
            )
            return ""
        # an exception restock can cure (RESTOCK_CURES): wait for it, checking at once
        state.wait_for_restock()
        state.deadlines.arm(Deadline.RESTOCK_CHECK, workflow.now())
        return "waiting for restock: stock arriving wakes the order"

    async def _retry(self, _: OperatorAction) -> str:
        state = self._state
        detail = f"retrying after {state.exception_reason}"
        if state.cancel_pending is not None:
            await self._order.cancel_order(state.cancel_pending, Command.CANCEL)
        elif state.failed_in == S.PENDING_PAYMENT and state.exception_reason == "unknown_sku":
            # mapped (or not): place it again; the payment hold starts now
            state.status, state.status_since = S.PENDING_PAYMENT, workflow.now()
            state.exception_reason, state.failed_in, state.unknown_skus = None, None, []
            await self._order.reserve_and_arm_payment_timers(since=workflow.now())
        else:
            self._resume()
        return detail

    def _resume(self) -> None:
        """Back to where the failed step left the order; out of stock tries the lock again."""
        state = self._state
        resume = state.failed_in if state.failed_in in (S.STOCK_LOCKED, S.PARTIALLY_SHIPPED) else None
        if resume is None:
            state.move(Command.RETRY)
        else:  # the parcels are still there: request the ones not yet requested
            state.status, state.status_since = resume, workflow.now()
        state.exception_reason = None
        state.unknown_skus = []
        state.failed_in = None
        state.stop_waiting_for_restock()

    async def _mark_shipped(self, request: OperatorAction) -> str:
        """A parcel left outside orderflow: every parcel not yet shipped goes with it."""
        state, params = self._state, request.params
        assert params.carrier is not None
        assert params.tracking_number is not None
        state.move(Command.MARK_SHIPPED, dry_run=True)
        with refusing("nothing is marked shipped yet: try again"):
            if not state.parcels.active:  # nothing was locked: the parcel carried stock from elsewhere
                if workflow.patched("mark-shipped-releases-reservation"):
                    # Stock reserved at placement (a held or failed order) is no longer needed.
                    released = await self._steps.run(
                        "release_stock",
                        InventoryActivities.release_stock,
                        ReleaseStock(order_id=state.order_id),
                        "release reserved stock",
                    )
                    if released:
                        state.record("stock_released", f"{released} reserved unit(s) released")
                state.parcels = Parcels([Parcel("outside orderflow", [])])
            shipped = state.parcels.unshipped()
            for parcel in shipped:
                await self._order.ship_parcel(parcel, params.carrier, params.tracking_number, tell_shop=False)
            self._order.tell_shop(shipped, params.carrier, params.tracking_number)  # one fulfilment for all
        state.move(Command.MARK_SHIPPED)
        state.exception_reason = None
        state.failed_in = None
        state.stop_waiting_for_restock()
        return ""

    async def _note(self, request: OperatorAction) -> str:
        return request.params.text or ""
