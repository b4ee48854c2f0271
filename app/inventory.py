"""Stock use cases: set a counted quantity, import a CSV of counts; raising domain errors for any edge.

More stock than before is handed to the restock dispatcher (app/restock.py) before the caller is
answered, so orders waiting for the SKU wake in priority order even if the process stops right after.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from app.errors import InvalidField, NotFound
from app.restock import Restocker
from domain.effects import StockLevel
from domain.stock import SetStock
from services.inventory import InventoryService
from services.warehouses import BadCsv, WarehouseService, parse_stock_csv

# Restock signals carry at most this many SKUs each, well under Temporal's payload limit.
SWEEP_CHUNK = 5_000


class StockCounts:
    def __init__(
        self, inventory: InventoryService, warehouses: WarehouseService, restocker: Restocker
    ) -> None:
        self._inventory = inventory
        self._warehouses = warehouses
        self._restocker = restocker

    async def set_count(self, warehouse: str, sku: str, count: SetStock) -> StockLevel:
        """Set on hand (and safety stock) of a registered warehouse's SKU: stock never ships from
        somewhere with no address or costs. StockConflict when below what orders hold."""
        if await run_in_threadpool(self._warehouses.get, warehouse) is None:
            raise NotFound(
                f"warehouse {warehouse}",
                f"describe it first with PUT /warehouses/{warehouse} (its country and shipping costs), "
                "then set its stock",
            )
        before = await run_in_threadpool(self._inventory.get, warehouse, sku)
        level = await run_in_threadpool(
            self._inventory.set_on_hand, warehouse, sku, count.on_hand, count.safety_stock
        )
        if level.available > (before.available if before else 0):
            await self._restocker.sweep([sku])
        return level

    async def import_csv(self, text: str) -> tuple[int, list[str]]:
        """(rows applied, SKUs whose stock grew): every row checked before any is applied, all or none."""
        try:
            rows = await run_in_threadpool(parse_stock_csv, text)
            grown = await run_in_threadpool(self._inventory.import_counts, rows)
        except BadCsv as exc:
            raise InvalidField("csv", str(exc)) from exc
        for start in range(0, len(grown), SWEEP_CHUNK):
            await self._restocker.sweep(grown[start : start + SWEEP_CHUNK])
        return len(rows), grown
