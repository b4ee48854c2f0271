"""Stock activities: thin adapters over InventoryService, safe to retry."""

from __future__ import annotations

import structlog
from temporalio import activity

from core.metrics import STOCK_LOCKS
from domain.effects import LockStock, ReleaseStock, Reservation, ReserveStock, ShipStock, StockLock
from services.inventory import InventoryService

log = structlog.get_logger(__name__)


class InventoryActivities:
    def __init__(self, inventory: InventoryService) -> None:
        self._inventory = inventory

    @activity.defn
    def reserve_stock(self, request: ReserveStock) -> Reservation:
        with structlog.contextvars.bound_contextvars(order_id=request.order_id):
            reservation = self._inventory.reserve_order(
                request.order_id, request.lines, request.destination, reserve=request.reserve
            )
            unknown = self._inventory.unknown_skus([line.sku for line in request.lines])
            if unknown:
                log.warning("unknown_sku", skus=unknown)
                reservation = reservation.model_copy(update={"unknown": unknown})
            log.info("stock_reserved", reserved=reservation.reserved, scarce=reservation.scarce)
            return reservation

    @activity.defn
    def lock_stock(self, request: LockStock) -> StockLock:
        with structlog.contextvars.bound_contextvars(order_id=request.order_id):
            lock = self._inventory.lock_order(
                request.order_id,
                request.lines,
                request.destination,
                generation=request.generation,
                warehouse=request.warehouse,
            )
            if lock.locked:
                log.info("stock_locked", warehouses=[part.warehouse for part in lock.parts])
            else:
                log.warning("stock_short", shortages=[s.model_dump() for s in lock.shortages])
                unknown = self._inventory.unknown_skus([line.sku for line in request.lines])
                if unknown:
                    lock = lock.model_copy(update={"unknown": unknown})
            result = "short" if not lock.locked else "split" if len(lock.parts) > 1 else "locked"
            activity.metric_meter().create_counter(STOCK_LOCKS, "Stock lock attempts", "1").add(
                1, {"result": result}
            )
            return lock

    @activity.defn
    def release_stock(self, request: ReleaseStock) -> int:
        with structlog.contextvars.bound_contextvars(order_id=request.order_id):
            units = self._inventory.release_order(request.order_id)
            log.info("stock_released", units=units)
            return units

    @activity.defn
    def ship_stock(self, request: ShipStock) -> int:
        with structlog.contextvars.bound_contextvars(order_id=request.order_id):
            units = self._inventory.ship_order(request.order_id, request.warehouse)
            log.info("stock_shipped", warehouse=request.warehouse, units=units)
            return units
