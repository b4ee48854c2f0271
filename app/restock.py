"""Restock hand-off: when a SKU's stock grows, tell the durable restock dispatcher (a Temporal workflow)."""

from __future__ import annotations

import structlog
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from app.orders import OrderGateway
from domain.restock import RestockDispatch, StockArrived, dispatcher_id
from services.orders import OrderStore
from workflows.restock import RestockWorkflow

log = structlog.get_logger(__name__)


async def stock_arrived(
    client: Client, task_queue: str, skus: list[str]
) -> WorkflowHandle[RestockWorkflow, None]:
    """Signal-with-start the task queue's dispatcher: it is started if not running, and the SKUs are in
    its history (durable) when this returns."""
    return await client.start_workflow(
        RestockWorkflow.run,
        RestockDispatch(),
        id=dispatcher_id(task_queue),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="stock_arrived",
        start_signal_args=[StockArrived(skus=skus)],
        static_summary=f"Restock dispatcher for task queue {task_queue}",
        static_details="Wakes orders waiting for stock, highest priority first, when stock arrives.",
    )


class Restocker:
    """Hands the SKUs whose stock grew to the restock dispatcher before the HTTP answer, so an API restart
    loses nothing; the dispatcher wakes the waiting orders in priority order, one at a time. When Temporal
    cannot be reached the stock change stands and each order still finds the stock on its own periodic
    restock check."""

    def __init__(self, gateway: OrderGateway, store: OrderStore | None = None) -> None:
        # The signature api/main.py builds it with. The gateway holds the caller's Temporal client and task
        # queue; `store` is unused now (the dispatcher's activity reads the read model, later and fresher).
        self._client: Client = gateway.client
        self._task_queue: str = gateway.task_queue

    async def sweep(self, skus: list[str]) -> bool:
        """True when the dispatcher has the SKUs (nothing to do for an empty list)."""
        if not skus:
            return True
        try:
            await stock_arrived(self._client, self._task_queue, skus)
        except (RPCError, RuntimeError) as err:  # RuntimeError: the SDK could not (re)connect
            log.warning("restock_not_dispatched", skus=skus, error=str(err))
            return False
        log.info("restock_dispatched", skus=skus, dispatcher=dispatcher_id(self._task_queue))
        return True

    def dispatcher(self) -> WorkflowHandle[RestockWorkflow, None]:
        """The task queue's dispatcher (query its `view` to see what it holds and did)."""
        return self._client.get_workflow_handle_for(RestockWorkflow.run, dispatcher_id(self._task_queue))

    async def drain(self) -> None:
        """Nothing to wait for at shutdown: every sweep was handed to Temporal before its HTTP answer."""
