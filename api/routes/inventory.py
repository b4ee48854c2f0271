"""Inventory endpoints: stock per (warehouse, SKU), CSV import and export, sellable units, low stock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Inventory, Reader, Restocker, Warehouses, Writer
from api.errors import NotFound, UnprocessableField
from domain.effects import StockLevel
from services.warehouses import BadCsv, parse_stock_csv

router = APIRouter(prefix="/inventory", tags=["inventory"])

WarehouseCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
SkuCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
SkuQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class SetStock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_hand: Annotated[int, Field(ge=0, le=10_000_000)]
    safety_stock: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


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


@router.post("/import", response_model=ImportResult)
async def import_csv(
    request: Request,
    _: Writer,
    inventory: Inventory,
    restocker: Restocker,
    csv_text: Annotated[str, Body(media_type="text/csv", description="warehouse,sku,on_hand[,safety_stock]")],
) -> ImportResult:
    """Set counts from a CSV (an edited export works); all rows are checked before any is applied.

    SKUs whose stock grew are handed to the restock dispatcher, which wakes their waiting orders.
    """
    try:
        rows = parse_stock_csv(csv_text)
    except BadCsv as exc:
        raise UnprocessableField("csv", str(exc)) from exc
    grown = await run_in_threadpool(inventory.import_counts, rows)
    await restocker.sweep(grown)
    return ImportResult(rows=len(rows), restocked_skus=grown)


@router.put("/{warehouse}/{sku}", response_model=StockLevel)
async def set_stock(
    warehouse: WarehouseCode,
    sku: SkuCode,
    body: SetStock,
    _: Writer,
    inventory: Inventory,
    restocker: Restocker,
) -> StockLevel:
    """Set the counted quantity on hand (and safety stock); refused (409) below what orders hold.

    More stock than before is handed to the restock dispatcher (a Temporal workflow) before the answer:
    it wakes the orders waiting for this SKU, highest priority first.
    """
    before = await run_in_threadpool(inventory.get, warehouse, sku)
    level = await run_in_threadpool(inventory.set_on_hand, warehouse, sku, body.on_hand, body.safety_stock)
    if level.available > (before.available if before else 0):
        await restocker.sweep([sku])
    return level


@router.get("/{warehouse}/{sku}", response_model=StockLevel)
async def get_stock(warehouse: WarehouseCode, sku: SkuCode, _: Reader, inventory: Inventory) -> StockLevel:
    """On hand, locked, reserved, available and safety stock."""
    level = await run_in_threadpool(inventory.get, warehouse, sku)
    if level is None:
        raise NotFound(f"stock for {sku} in {warehouse}")
    return level
