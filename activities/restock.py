"""Restock sweep activity: wake the orders waiting for new stock, highest priority first, one at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.models import OrderStatus, OrderView, RestockCheck
from domain.restock import RestockBatch, RestockOutcome, RestockProgress, order_workflow_id
from services.orders import OrderStore

log = structlog.get_logger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=5)


class RestockActivities:
    """Workflows cannot send updates to other workflows: this activity does, with the worker's client."""

    def __init__(self, client: Client, orders: OrderStore) -> None:
        self._client = client
        self._orders = orders

    @activity.defn
    async def dispatch_restock(self, batch: RestockBatch) -> RestockOutcome:
        """Send each waiting order the `restock` update in priority order and wait for its answer before
        the next, so scarce stock goes to the most important order. Safe to retry: orders handled by an
        earlier attempt (heartbeat details) are skipped, and an order no longer waiting refuses."""
        details = activity.info().heartbeat_details
        earlier = RestockProgress.model_validate(details[0]) if details else RestockProgress()
        locked, short, skipped = list(earlier.locked), list(earlier.still_short), list(earlier.skipped)

        def progress() -> RestockProgress:
            return RestockProgress(locked=locked, still_short=short, skipped=skipped)

        waiting = await asyncio.to_thread(self._orders.waiting_for_stock, batch.skus)
        async with _heartbeating(progress):
            for order_id in waiting:
                if order_id in locked or order_id in short or order_id in skipped:
                    continue  # served by an earlier attempt of this sweep
                view = await self._restock(order_id, batch.sweep_id)
                if view is None:
                    skipped.append(order_id)
                else:
                    (short if view.status == OrderStatus.EXCEPTION else locked).append(order_id)
                activity.heartbeat(progress())
        log.info(
            "restock_sweep",
            skus=batch.skus,
            waiting=len(waiting),
            locked=locked,
            still_short=len(short),
            skipped=len(skipped),
        )
        return RestockOutcome(
            skus=batch.skus, waiting=len(waiting), locked=locked, still_short=short, skipped=skipped
        )

    async def _restock(self, order_id: str, sweep_id: str) -> OrderView | None:
        """The order's answer, or None when it refused (no longer waiting) or is gone."""
        handle = self._client.get_workflow_handle(order_workflow_id(order_id))
        try:
            view: OrderView = await handle.execute_update(
                "restock", RestockCheck(), id=f"restock-{sweep_id}", result_type=OrderView
            )
            return view
        except WorkflowUpdateFailedError as err:
            # Refused by the validator (resolved or cancelled meanwhile), or failed inside the order:
            # either way a retry of the sweep would not change it, and it must not block the others.
            reason = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause)
            log.info("restock_skipped", order_id=order_id, reason=reason)
            return None
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise  # Temporal unreachable: the activity retries, resuming after the last order done
            log.info("restock_skipped", order_id=order_id, reason="no running workflow")
            return None


@contextlib.asynccontextmanager
async def _heartbeating(progress: Callable[[], RestockProgress]) -> AsyncIterator[None]:
    """Heartbeat while one order's update is in flight, which may take a while (its lock activity)."""

    async def beat() -> None:
        while True:
            activity.heartbeat(progress())
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
