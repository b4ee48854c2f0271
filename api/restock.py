"""Restock sweeps: when a SKU's stock grows, wake the orders waiting for it, highest priority first."""

from __future__ import annotations

import asyncio

import structlog
from starlette.concurrency import run_in_threadpool

from api.errors import Conflict, NotFound
from api.gateway import OrderGateway
from services.orders import OrderStore

log = structlog.get_logger(__name__)


class Restocker:
    """Sends each waiting order the `restock` update in priority order, one at a time, so scarce new
    stock goes to the most important orders first. Runs after the HTTP answer; an order missed here
    (the API stopped mid-sweep) still finds the stock on its own periodic restock check."""

    def __init__(self, gateway: OrderGateway, store: OrderStore) -> None:
        self._gateway = gateway
        self._store = store
        self._one_at_a_time = asyncio.Lock()
        self._running: set[asyncio.Task[list[str]]] = set()

    def sweep(self, skus: list[str]) -> None:
        if not skus:
            return
        task = asyncio.create_task(self._sweep(skus))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def drain(self) -> None:
        """Wait for sweeps under way (shutdown, tests)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _sweep(self, skus: list[str]) -> list[str]:
        locked: list[str] = []
        async with self._one_at_a_time:
            waiting = await run_in_threadpool(self._store.waiting_for_stock, skus)
            for order_id in waiting:
                try:
                    view = await self._gateway.restock(order_id)
                except (Conflict, NotFound):
                    continue  # resolved or cancelled meanwhile
                if view.status != "exception":
                    locked.append(order_id)
        log.info("restock_sweep", skus=skus, waiting=len(waiting), locked=locked)
        return locked
