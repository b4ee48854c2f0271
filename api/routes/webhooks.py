"""Webhook endpoints: stores and Stripe deliver here, signed (no API key: the signature is the
authentication), and operators see what became of each delivery and replay failed ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Inbound, Operator
from app.channel_events import Receipt, Source
from domain.models import SHOP_ID_PATTERN
from domain.shops import STRIPE_ACCOUNT_PATTERN
from integrations.errors import SignatureError
from services.inbox import InboxEntry, InboxStatus, Rejections

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

ShopIdPath = Annotated[str, Path(pattern=SHOP_ID_PATTERN, description="the shop's id in orderflow")]
AccountPath = Annotated[str, Path(pattern=STRIPE_ACCOUNT_PATTERN, description="the shop's Stripe account")]


class Accepted(BaseModel):
    """The answer to a delivery: stored (or already stored), and what became of it so far."""

    delivery_id: str | None
    status: str
    duplicate: bool = False
    reason: str | None = None


class Deliveries(BaseModel):
    """Recent deliveries with their outcome, and per shop the deliveries refused for their signature."""

    deliveries: list[InboxEntry]
    rejected: list[Rejections]


def _accepted(receipt: Receipt) -> Accepted:
    if receipt.entry is None:
        return Accepted(delivery_id=None, status="ping")
    entry = receipt.entry
    return Accepted(
        delivery_id=entry.delivery_id,
        status=entry.status.value,
        duplicate=not receipt.new,
        reason=entry.reason,
    )


async def _receive(inbound: Inbound, source: Source, key: str, request: Request) -> Accepted:
    body = await request.body()  # the raw bytes: the signature covers exactly these
    try:
        receipt = await inbound.receive(source, key, request.headers, body)
    except SignatureError as refused:
        raise HTTPException(401, f"signature refused: {refused}") from refused
    return _accepted(receipt)


@router.post("/shopify/{shop_id}", response_model=Accepted)
async def shopify(shop_id: ShopIdPath, request: Request, inbound: Inbound) -> Accepted:
    """A Shopify webhook (X-Shopify-Topic: orders/create, orders/paid, orders/updated, orders/cancelled,
    refunds/create, app/uninstalled), checked against the shop's client secret."""
    return await _receive(inbound, Source.SHOPIFY, shop_id, request)


@router.post("/woocommerce/{shop_id}", response_model=Accepted)
async def woocommerce(shop_id: ShopIdPath, request: Request, inbound: Inbound) -> Accepted:
    """A WooCommerce webhook (order.created, order.updated, order.deleted), checked against the shop's
    webhook secret; the unsigned ping sent when the webhook is made gets 200 and changes nothing."""
    return await _receive(inbound, Source.WOOCOMMERCE, shop_id, request)


@router.post("/stripe/{account_id}", response_model=Accepted)
async def stripe(account_id: AccountPath, request: Request, inbound: Inbound) -> Accepted:
    """A Stripe event for the shop with this Stripe account, checked against its signing secret."""
    return await _receive(inbound, Source.STRIPE, account_id, request)


@router.get("/deliveries", response_model=Deliveries)
async def deliveries(
    _: Operator,
    inbound: Inbound,
    shop_id: Annotated[str | None, Query(pattern=SHOP_ID_PATTERN)] = None,
    status: Annotated[InboxStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Deliveries:
    """Recent deliveries (newest first) with what became of them, and how many deliveries each shop
    refused for their signature and when the last one was: why an order did not arrive."""
    found = await run_in_threadpool(inbound.inbox.list, shop_id, status, limit)
    rejected = await run_in_threadpool(inbound.inbox.rejections, shop_id)
    return Deliveries(deliveries=found, rejected=rejected)


@router.post("/deliveries/{inbox_id}/replay", response_model=InboxEntry)
async def replay(
    inbox_id: Annotated[int, Path(ge=1, le=2**31 - 1)], _: Operator, inbound: Inbound
) -> InboxEntry:
    """Apply a failed delivery again, after fixing what its reason named (a missing SKU, a shop setting)."""
    return await inbound.replay(inbox_id)
