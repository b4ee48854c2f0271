"""Inventory endpoints: read and set stock per (warehouse, SKU)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Inventory, Reader, Writer
from api.errors import NotFound
from domain.effects import StockLevel

router = APIRouter(prefix="/inventory", tags=["inventory"])

WarehouseCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
SkuCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class SetStock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_hand: Annotated[int, Field(ge=0, le=10_000_000)]


@router.put("/{warehouse}/{sku}", response_model=StockLevel)
async def set_stock(
    warehouse: WarehouseCode, sku: SkuCode, body: SetStock, _: Writer, inventory: Inventory
) -> StockLevel:
    """Set the counted quantity on hand; refused (409) below what open orders hold."""
    return await run_in_threadpool(inventory.set_on_hand, warehouse, sku, body.on_hand)


@router.get("/{warehouse}/{sku}", response_model=StockLevel)
async def get_stock(warehouse: WarehouseCode, sku: SkuCode, _: Reader, inventory: Inventory) -> StockLevel:
    """On hand, locked, reserved and available units."""
    level = await run_in_threadpool(inventory.get, warehouse, sku)
    if level is None:
        raise NotFound(f"stock for {sku} in {warehouse}")
    return level
