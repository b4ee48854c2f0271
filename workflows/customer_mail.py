"""Customer mail beside the order: each message an activity the main loop does not wait for, so a
slow mail server never holds the order up; those not yet confirmed sent are carried on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from domain.models import CarriedNotification
    from domain.notifications import PAYMENT_REMINDERS, NotificationKind, Notify

    from workflows.parcels import Parcel
    from workflows.state import LiveOrder
    from workflows.steps import ACTIVITY_TIMEOUT

NOTIFY_RETRY = RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(minutes=10))


class CustomerMail:
    def __init__(self, state: LiveOrder, priority: Priority) -> None:
        self._state = state
        self._priority = priority
        self._tasks: list[asyncio.Task[None]] = []
        self._unsent: dict[tuple[str, str | None], CarriedNotification] = {}

    def send(self, kind: NotificationKind, parcel: Parcel | None = None) -> None:
        """Start the mail; a mail that finally fails leaves a `notification_failed` timeline entry."""
        state, order = self._state, self._state.order
        cancelled = kind == NotificationKind.ORDER_CANCELLED
        notify = Notify(
            order_id=state.order_id,
            kind=kind,
            reference=parcel.warehouse if parcel and len(state.parcels.active) > 1 else None,
            customer=order.customer,
            channel_order_id=order.channel_order_id,
            lines=order.lines,
            total=order.total,
            currency=order.currency,
            cancel_kind=state.cancel_kind if cancelled else None,
            customer_message=state.customer_message if cancelled else None,
            carrier=parcel.carrier if parcel else None,
            tracking_number=parcel.tracking_number if parcel else None,
            payment_due_at=state.payment_due_at if kind in PAYMENT_REMINDERS else None,
        )

        pending = CarriedNotification(kind=kind.value, warehouse=parcel.warehouse if parcel else None)
        self._unsent[(pending.kind, pending.warehouse)] = pending

        async def deliver() -> None:
            try:
                await workflow.execute_activity_method(
                    NotificationActivities.notify_customer,
                    notify,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=NOTIFY_RETRY,
                    summary=f"email {kind.value} to the buyer",
                    priority=self._priority,
                )
            except ActivityError as err:
                state.record("notification_failed", f"{kind.value}: {err.cause or err}")
            self._unsent.pop((pending.kind, pending.warehouse), None)

        self._tasks.append(asyncio.create_task(deliver()))

    def resend(self, carried: list[CarriedNotification]) -> None:
        """Mails the previous run had not seen through: sent again (the outbox dedupes them)."""
        for mail in carried:
            parcel = next((p for p in self._state.parcels.items if p.warehouse == mail.warehouse), None)
            self.send(NotificationKind(mail.kind), parcel)

    def all_done(self) -> bool:
        return all(task.done() for task in self._tasks)

    async def finish(self) -> None:
        await asyncio.gather(*self._tasks)

    def unsent(self) -> list[CarriedNotification]:
        return list(self._unsent.values())
