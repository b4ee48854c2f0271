"""Stock activities: thin adapters over InventoryService, safe to retry."""

from __future__ import annotations

from temporalio import activity

from domain.effects import LockStock, ReleaseStock, ShipStock, StockLock
from services.inventory import InventoryService


class InventoryActivities:
    def __init__(self, inventory: InventoryService) -> None:
        self._inventory = inventory

    @activity.defn
    def lock_stock(self, request: LockStock) -> StockLock:
        return self._inventory.lock_order(request.order_id, request.lines)

    @activity.defn
    def release_stock(self, request: ReleaseStock) -> int:
        return self._inventory.release_order(request.order_id)

    @activity.defn
    def ship_stock(self, request: ShipStock) -> int:
        return self._inventory.ship_order(request.order_id, request.warehouse)
