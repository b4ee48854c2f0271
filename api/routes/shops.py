"""Shop endpoints: a seller's stores, their settings and which secrets are set (never the secrets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Reader, ShopManager, Shops
from domain.models import Channel
from domain.shops import SHOP_ID_PATTERN, ShopIn, ShopView

router = APIRouter(prefix="/shops", tags=["shops"])

ShopIdPath = Annotated[
    str, Path(pattern=SHOP_ID_PATTERN, description="your name for the shop: a-z, 0-9, _ and -, up to 64")
]


@router.put("/{shop_id}", response_model=ShopView)
async def put_shop(shop_id: ShopIdPath, body: ShopIn, _: ShopManager, shops: Shops) -> ShopView:
    """Create or describe a shop and set its secrets. Operator keys only. Credentials left out keep
    their stored values, null removes one; a new webhook secret leaves the previous one valid for
    ORDERS_WEBHOOK_SECRET_GRACE. The answer says which secrets are set, never their values."""
    return await run_in_threadpool(shops.put, shop_id, body)


@router.get("", response_model=list[ShopView])
async def list_shops(
    _: Reader, shops: Shops, channel: Annotated[Channel | None, Query()] = None
) -> list[ShopView]:
    """Every shop (optionally of one channel), with which secrets are set and its health."""
    return await run_in_threadpool(shops.list, channel)


@router.get("/{shop_id}", response_model=ShopView)
async def get_shop(shop_id: ShopIdPath, _: Reader, shops: Shops) -> ShopView:
    """One shop: its settings, which secrets are set and when they changed, and its health."""
    return await run_in_threadpool(shops.get, shop_id)
