"""Warehouse endpoints: where each warehouse is and what it ships where, at what cost and speed."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Reader, WarehouseCodePath, WarehouseManager, Warehouses
from api.errors import NotFound, UnprocessableField
from domain.allocation import ShippingOption, WarehouseInfo
from domain.models import CountryCode, Model
from domain.regions import Region, region_of

router = APIRouter(prefix="/warehouses", tags=["inventory"])

WarehouseCode = WarehouseCodePath


class Shipping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cost: Annotated[Decimal, Field(ge=0, max_digits=10)]
    days: Annotated[int, Field(ge=0, le=120)]


class WarehouseIn(Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    country: CountryCode
    daily_capacity: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    shipping: dict[Region, Shipping] = Field(description="destination region -> cost and days")


class WarehouseOut(BaseModel):
    code: str
    country: str | None
    region: Region | None
    daily_capacity: int | None
    shipping: dict[Region, ShippingOption]


@router.put("/{code}", response_model=WarehouseOut)
async def put_warehouse(
    code: WarehouseCode, body: WarehouseIn, _: WarehouseManager, warehouses: Warehouses
) -> WarehouseOut:
    """Create or describe a warehouse: its country (hence region) and the regions it ships to.
    Operator keys only: a warehouse decides where orders are sent."""
    if not body.shipping:
        raise UnprocessableField("shipping", "name at least one destination region with cost and days")
    info = WarehouseInfo(
        code=code,
        country=body.country,
        region=region_of(body.country),
        daily_capacity=body.daily_capacity,
        shipping={region: ShippingOption(cost=s.cost, days=s.days) for region, s in body.shipping.items()},
    )
    saved = await run_in_threadpool(warehouses.upsert, info, body.name)
    return WarehouseOut.model_validate(saved.model_dump())


@router.get("", response_model=list[WarehouseOut])
async def list_warehouses(_: Reader, warehouses: Warehouses) -> list[WarehouseOut]:
    """Every registered warehouse."""
    return [WarehouseOut.model_validate(w.model_dump()) for w in await run_in_threadpool(warehouses.all)]


@router.get("/{code}", response_model=WarehouseOut)
async def get_warehouse(code: WarehouseCode, _: Reader, warehouses: Warehouses) -> WarehouseOut:
    """One warehouse."""
    info = await run_in_threadpool(warehouses.get, code)
    if info is None:
        raise NotFound(f"warehouse {code}")
    return WarehouseOut.model_validate(info.model_dump())
