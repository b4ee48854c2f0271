"""The order's calls back to its shop and to Stripe, beside the order like customer mail: the main
loop never waits for them, since a store that is down leaves the store's copy behind, not the order.

Each call is an activity retried with back-off (honouring the counterpart's Retry-After); one that
fails for good, or past its attempts, goes on the timeline with what to do, and the order carries on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.channels import SHOP_REFUSED, ChannelActivities
    from domain.effects import (
        SHOP_CALL_ATTEMPTS,
        CancelOnShop,
        CreateFulfilment,
        RefundPayment,
        ShopCall,
        ShopCheck,
        ShopLine,
        tracking_url,
    )
    from domain.humanize import duration

    from workflows.parcels import Parcel
    from workflows.state import LiveOrder
    from workflows.steps import ACTIVITY_TIMEOUT, failure_reason

# About 6 hours of attempts: 5 s doubling to 30 min, 20 in all. A store that is down longer than that
# is told by hand (the timeline says so); a refusal (401, 404) stops at once, marking the shop unhealthy.
SHOP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=30),
    maximum_attempts=SHOP_CALL_ATTEMPTS,
)
# A refused call (the shop marked unhealthy) waits for the fix: the shop is looked at every
# RESEND_EVERY (through the activity's retries, so the order's history does not grow) for RESEND_FOR.
RESEND_EVERY = timedelta(minutes=5)
RESEND_FOR = timedelta(days=3)
WAIT_FOR_FIX = RetryPolicy(
    initial_interval=RESEND_EVERY, backoff_coefficient=1.0, maximum_interval=RESEND_EVERY
)
STRIPE_PAYMENT = "Stripe"  # ConfirmPayment.method of payments Stripe took (app/channel_events.py)


class ShopCalls:
    def __init__(self, state: LiveOrder, priority: Priority) -> None:
        self._state = state
        self._priority = priority
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[int, str] = {}  # call number -> summary, while it has not ended

    @property
    def shop_id(self) -> str | None:
        """The order's shop; None (the channel's default shop) has no credentials: nothing to call."""
        return self._state.order.shop_id

    def fulfil(self, parcels: list[Parcel], carrier: str, tracking_number: str) -> None:
        """Create one fulfilment on the shop for the parcels (key `fulfilment:<order>:<parcels>`);
        several when an operator marks them shipped under one tracking number."""
        if self.shop_id is None:
            return
        order = self._state.order
        items = [item for parcel in parcels for item in parcel.lines]
        lines = [
            ShopLine(channel_line_id=ref, quantity=item.quantity)
            for item in items
            if (ref := order.lines[item.line_no].channel_line_id)
        ]
        where = "+".join(parcel.warehouse for parcel in parcels)
        whole = len(parcels) >= len(self._state.parcels.active)  # the order leaves at once
        if len(lines) < len(items) and not whole:
            self._state.record(
                "shop_not_updated",
                f"the parcel from {where} cannot be reported to shop {self.shop_id}: its lines carry "
                "no channel line id. Mark it fulfilled on the store by hand",
            )
            return
        request = CreateFulfilment(
            order_id=self._state.order_id,
            shop_id=self.shop_id,
            channel_order_id=order.channel_order_id,
            parcel=where,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url(carrier, tracking_number),
            lines=lines if len(lines) == len(items) else [],
            last_parcel=not self._state.parcels.unshipped(),
        )
        self._start(
            ChannelActivities.create_fulfilment,
            request,
            f"tell shop {self.shop_id} the parcel from {where} shipped",
            "shop_fulfilled",
            by_hand=f"mark order {order.channel_order_id} fulfilled with {carrier} {tracking_number}",
        )

    def cancel(self, reason: str, refund_id: str | None) -> None:
        """Cancel on the shop, and refund through Stripe when Stripe took the money; the shop refunds
        itself when it took the money (Shopify)."""
        if self.shop_id is None:
            return
        payment = self._state.payment
        by_stripe = payment is not None and payment.method == STRIPE_PAYMENT
        self._start(
            ChannelActivities.cancel_on_shop,
            CancelOnShop(
                order_id=self._state.order_id,
                shop_id=self.shop_id,
                channel_order_id=self._state.order.channel_order_id,
                reason=reason,
                refund=payment is not None and not by_stripe,
            ),
            f"cancel the order on shop {self.shop_id}",
            "shop_cancelled",
            by_hand=f"cancel order {self._state.order.channel_order_id}"
            + (" and refund the buyer" if payment is not None and not by_stripe else ""),
        )
        if payment is not None and by_stripe and refund_id is not None:
            money = f"{payment.amount} {payment.currency}"
            self._start(
                ChannelActivities.refund_payment,
                RefundPayment(
                    order_id=self._state.order_id,
                    shop_id=self.shop_id,
                    refund_id=refund_id,
                    payment_intent_id=payment.payment_id,
                    amount=payment.amount,
                    currency=payment.currency,
                ),
                f"refund {money} through Stripe",
                "refund_sent",
                advice=(
                    f"Refund {money} by hand in Stripe's dashboard (payment {payment.payment_id}), then "
                    "record it on the order with the note action: orderflow's refund record stays failed"
                ),
            )

    def _start(
        self,
        method: object,
        request: object,
        summary: str,
        done_kind: str,
        *,
        by_hand: str = "update it",
        advice: str = "",
    ) -> None:
        """Run the call beside the order. When it fails for good the timeline says what to do: `advice`,
        or fix the shop and then do `by_hand` on the store."""
        state = self._state
        began = workflow.now()
        number = len(self._tasks)
        self._running[number] = summary

        async def call() -> None:
            try:
                result = await self._call(method, request, summary)
            except ActivityError as err:
                cause = err.cause or err
                refused = _refused(cause)
                after = duration(workflow.now() - began)
                failed = f"{summary} failed ({failure_reason(cause)}; gave up after {after})."
                # A refused call waits for the shop to be fixed, then goes out by itself; orders refused
                # before this stopped here.
                if refused and not advice and workflow.patched("resend-refused-shop-calls"):
                    state.record(
                        "shop_call_failed",
                        f"{failed} The order carries on. Fix the shop (GET /shops/{self.shop_id} says "
                        f"why; PUT /shops/{self.shop_id} with new credentials) and orderflow sends this "
                        f"again by itself (it looks every {duration(RESEND_EVERY)} for "
                        f"{duration(RESEND_FOR)}); or {by_hand} on the store by hand",
                    )
                    resent = await self._resend(method, request, summary, began + RESEND_FOR)
                    self._running.pop(number, None)
                    if isinstance(resent, str):
                        state.record(
                            "shop_call_failed",
                            f"{summary} was not sent again: {resent}. "
                            f"{by_hand[0].upper()}{by_hand[1:]} on the store by hand",
                        )
                    else:
                        self._ended(resent, summary, done_kind, again=True)
                    return
                self._running.pop(number, None)
                fix = (
                    f"fix the shop (GET /shops/{self.shop_id} says why; PUT /shops/{self.shop_id} with "
                    "new credentials), then"
                    if refused
                    else "once the store answers again,"
                )
                todo = advice or (
                    f"The order carries on; the store's copy is behind: {fix} {by_hand} on the store by hand"
                )
                state.record("shop_call_failed", f"{failed} {todo}")
                return
            self._running.pop(number, None)
            self._ended(result, summary, done_kind)

        self._tasks.append(asyncio.create_task(call()))

    def _ended(self, result: ShopCall, summary: str, done_kind: str, *, again: bool = False) -> None:
        if result.done:
            resent = " (sent again once the shop was fixed)" if again else ""
            self._state.record(done_kind, f"{summary}: {result.detail}{resent}")
        else:  # a shop named by the order but not set up for it: someone must do it by hand
            self._state.record(
                "shop_not_updated",
                f"{summary}: not sent, {result.detail}. Add it with PUT /shops/{self.shop_id} for "
                "the next orders, and do this one on the store (or in Stripe) by hand",
            )

    async def _call(self, method: object, request: object, summary: str) -> ShopCall:
        result: ShopCall = await workflow.execute_activity_method(
            method,  # type: ignore[call-overload]
            request,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=SHOP_RETRY,
            summary=summary,
            priority=self._priority,
        )
        return result

    async def _resend(self, method: object, request: object, summary: str, until: datetime) -> ShopCall | str:
        """Send the refused call again each time the shop is fixed, until it goes through (its result)
        or cannot (why: the shop was not fixed by `until`, or the call failed otherwise)."""
        assert self.shop_id is not None
        not_fixed = f"the shop was not fixed within {duration(RESEND_FOR)}"
        while (left := until - workflow.now()) > timedelta(0):
            try:
                fixed: ShopCall = await workflow.execute_activity_method(
                    ChannelActivities.shop_fixed,
                    ShopCheck(shop_id=self.shop_id),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    schedule_to_close_timeout=left,
                    retry_policy=WAIT_FOR_FIX,
                    summary=f"wait until shop {self.shop_id} is fixed, then {summary}",
                    priority=self._priority,
                )
            except ActivityError:
                return not_fixed  # still unhealthy when the time ran out
            if not fixed.done:  # the shop was removed
                return fixed.detail
            try:
                return await self._call(method, request, summary)
            except ActivityError as err:
                cause = err.cause or err
                if not _refused(cause):
                    return f"once the shop was fixed it failed: {failure_reason(cause)}"
        return not_fixed

    def abandon(self) -> None:
        """The order continues as new while calls still retry: the new run does not wait for them,
        so the timeline says which may not have reached the store."""
        for summary in self._running.values():
            self._state.record(
                "shop_call_failed",
                f"{summary} was still retrying when the order's history was renewed and was left off; "
                "check the store and update it by hand if it did not arrive",
            )
        self._running.clear()

    def all_done(self) -> bool:
        return all(task.done() for task in self._tasks)

    async def finish(self) -> None:
        await asyncio.gather(*self._tasks)


def _refused(cause: BaseException) -> bool:
    """The shop refused the call for good (and was marked unhealthy): only a fix makes it pass."""
    return isinstance(cause, ApplicationError) and cause.type == SHOP_REFUSED
