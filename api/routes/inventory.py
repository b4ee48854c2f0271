"""Inventory endpoints: stock per (warehouse, SKU), CSV import and export, sellable units, low stock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Inventory, Reader, SkuPath, SkuQuery, StockCounts, WarehouseCodePath, Warehouses, Writer
from api.errors import NotFound
from api.guard import CSV_BODY_LIMIT
from domain.effects import StockLevel
from domain.stock import SetStock

router = APIRouter(prefix="/inventory", tags=["inventory"])

WarehouseCode = WarehouseCodePath
SkuCode = SkuPath


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
    counts: StockCounts,
    csv_text: Annotated[str, Body(media_type="text/csv", description="warehouse,sku,on_hand[,safety_stock]")],
) -> ImportResult:
    """Set counts from a CSV (an edited export works); all rows are checked before any is applied.

    Each row is checked as PUT /inventory checks its input; a bad row, a warehouse nobody registered
    or a SKU stocked in another case is 422 naming the line and column; 409 when a count is below what
    orders hold; 413 over the size limit. All rows or none are applied.

    SKUs whose stock grew are handed to the restock dispatcher, which wakes their waiting orders.
    """
    rows, grown = await counts.import_csv(csv_text)
    return ImportResult(rows=rows, restocked_skus=grown)


@router.put("/{warehouse}/{sku:path}", response_model=StockLevel)
async def set_stock(
    warehouse: WarehouseCode,
    sku: SkuCode,
    body: SetStock,
    _: Writer,
    counts: StockCounts,
) -> StockLevel:
    """Set the counted quantity on hand (and safety stock); refused (409) below what orders hold.

    The warehouse must be registered (404 otherwise: PUT /warehouses/{code} first), so stock never
    ships from somewhere with no address or costs. A SKU stocked in another case is refused (409).

    More stock than before is handed to the restock dispatcher (a Temporal workflow) before the answer:
    it wakes the orders waiting for this SKU, highest priority first.
    """
    return await counts.set_count(warehouse, sku, body)


@router.get("/{warehouse}/{sku:path}", response_model=StockLevel)
async def get_stock(warehouse: WarehouseCode, sku: SkuCode, _: Reader, inventory: Inventory) -> StockLevel:
    """On hand, locked, reserved, available and safety stock."""
    level = await run_in_threadpool(inventory.get, warehouse, sku)
    if level is None:
        raise NotFound(f"stock for {sku} in {warehouse}")
    return level
