"""Inventory endpoints: stock per (warehouse, SKU), CSV import and export, sellable units, low stock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Inventory, Reader, Restocker, SkuPath, SkuQuery, WarehouseCodePath, Warehouses, Writer
from api.errors import NotFound, UnprocessableField
from api.guard import CSV_BODY_LIMIT
from domain.effects import StockLevel
from domain.stock import SetStock
from services.warehouses import BadCsv, parse_stock_csv

router = APIRouter(prefix="/inventory", tags=["inventory"])

WarehouseCode = WarehouseCodePath
SkuCode = SkuPath
# Restock signals carry at most this many SKUs each, well under Temporal's payload limit.
SWEEP_CHUNK = 5_000


class ImportResult(BaseModel):
    rows: int
    restocked_skus: list[str]


class LowStock(BaseModel):
    warehouse: str
    sku: str
    available: int
    safety_stock: int
    at: datetime
    resolved_at: datetime | None


@router.get("", response_model=list[StockLevel])
async def list_stock(_: Reader, inventory: Inventory, sku: SkuQuery = None) -> list[StockLevel]:
    """Every stock row, or one SKU's rows across warehouses."""
    return await run_in_threadpool(inventory.levels, sku)


@router.get("/sellable", response_model=dict[str, int])
async def sellable(_: Reader, inventory: Inventory, sku: SkuQuery = None) -> dict[str, int]:
    """Units each SKU may be listed with on a channel: available above safety stock, all warehouses."""
    return await run_in_threadpool(inventory.sellable, sku)


@router.get("/low-stock", response_model=list[LowStock])
async def low_stock(
    _: Reader, inventory: Inventory, open_only: Annotated[bool, Query(alias="open")] = True
) -> list[LowStock]:
    """Stock rows that fell under their safety stock (open ones, or all with ?open=false)."""
    events = await run_in_threadpool(inventory.low_stock, open_only)
    return [LowStock.model_validate(e, from_attributes=True) for e in events]


class CsvResponse(PlainTextResponse):
    media_type = "text/csv"


@router.get("/export.csv", response_class=CsvResponse)
async def export_csv(_: Reader, warehouses: Warehouses) -> CsvResponse:
    """Every stock row as CSV (warehouse, sku, on_hand, locked, reserved, available, safety_stock)."""
    return CsvResponse(await run_in_threadpool(warehouses.export_stock_csv))


@router.post("/import", response_model=ImportResult, max_body_size=CSV_BODY_LIMIT)
async def import_csv(
    request: Request,
    _: Writer,
    inventory: Inventory,
    restocker: Restocker,
    csv_text: Annotated[str, Body(media_type="text/csv", description="warehouse,sku,on_hand[,safety_stock]")],
) -> ImportResult:
    """Set counts from a CSV (an edited export works); all rows are checked before any is applied.

    Each row is checked as PUT /inventory checks its input; a bad row, a warehouse nobody registered
    or a SKU stocked in another case is 422 naming the line and column; 409 when a count is below what
    orders hold; 413 over the size limit. All rows or none are applied.

    SKUs whose stock grew are handed to the restock dispatcher, which wakes their waiting orders.
    """
    try:
        rows = await run_in_threadpool(parse_stock_csv, csv_text)
        grown = await run_in_threadpool(inventory.import_counts, rows)
    except BadCsv as exc:
        raise UnprocessableField("csv", str(exc)) from exc
    for start in range(0, len(grown), SWEEP_CHUNK):
        await restocker.sweep(grown[start : start + SWEEP_CHUNK])
    return ImportResult(rows=len(rows), restocked_skus=grown)


@router.put("/{warehouse}/{sku:path}", response_model=StockLevel)
async def set_stock(
    warehouse: WarehouseCode,
    sku: SkuCode,
    body: SetStock,
    _: Writer,
    inventory: Inventory,
    warehouses: Warehouses,
    restocker: Restocker,
) -> StockLevel:
    """Set the counted quantity on hand (and safety stock); refused (409) below what orders hold.

    The warehouse must be registered (404 otherwise: PUT /warehouses/{code} first), so stock never
    ships from somewhere with no address or costs. A SKU stocked in another case is refused (409).

    More stock than before is handed to the restock dispatcher (a Temporal workflow) before the answer:
    it wakes the orders waiting for this SKU, highest priority first.
    """
    if await run_in_threadpool(warehouses.get, warehouse) is None:
        raise HTTPException(
            status_code=404,
            detail=f"warehouse {warehouse} is not registered: describe it first with PUT /warehouses/"
            f"{warehouse} (its country and shipping costs), then set its stock",
        )
    before = await run_in_threadpool(inventory.get, warehouse, sku)
    level = await run_in_threadpool(inventory.set_on_hand, warehouse, sku, body.on_hand, body.safety_stock)
    if level.available > (before.available if before else 0):
        await restocker.sweep([sku])
    return level


@router.get("/{warehouse}/{sku:path}", response_model=StockLevel)
async def get_stock(warehouse: WarehouseCode, sku: SkuCode, _: Reader, inventory: Inventory) -> StockLevel:
    """On hand, locked, reserved, available and safety stock."""
    level = await run_in_threadpool(inventory.get, warehouse, sku)
    if level is None:
        raise NotFound(f"stock for {sku} in {warehouse}")
    return level
