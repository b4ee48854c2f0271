"""Order endpoints: place, read, list, and drive an order through payment, shipment and tracking."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Gateway, OrderId, Reader, Store, Writer
from domain.models import (
    CancelOrder,
    Channel,
    ConfirmPayment,
    ConfirmReceipt,
    ConfirmShipment,
    CountryCode,
    OrderStatus,
    OrderView,
    PlaceOrder,
    TrackingUpdate,
)
from domain.transitions import Command
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/orders", tags=["orders"])


class OrderSummary(BaseModel):
    order_id: str
    channel: Channel
    channel_order_id: str
    status: OrderStatus
    country: str
    total: Decimal
    currency: str
    warehouse: str | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


@router.post("", response_model=OrderView, status_code=status.HTTP_201_CREATED)
async def place_order(order: PlaceOrder, _: Writer, gateway: Gateway, response: Response) -> OrderView:
    """Place an order; the same (channel, channel_order_id) again returns the existing order (200)."""
    view, created = await gateway.place(order)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("", response_model=OrderPage)
async def list_orders(
    _: Reader,
    store: Store,
    status: OrderStatus | None = None,
    channel: Channel | None = None,
    country: Annotated[CountryCode | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderPage:
    """List orders from the read model, newest first; pass next_cursor back for the next page."""
    views, next_cursor = await run_in_threadpool(
        lambda: store.list(status=status, channel=channel, country=country, limit=limit, cursor=cursor)
    )
    items = [
        OrderSummary(
            order_id=v.order_id,
            channel=v.channel,
            channel_order_id=v.channel_order_id,
            status=v.status,
            country=v.shipping_address.country,
            total=v.total,
            currency=v.currency,
            warehouse=v.warehouse,
            created_at=v.created_at,
            updated_at=v.updated_at,
        )
        for v in views
    ]
    return OrderPage(items=items, next_cursor=next_cursor)


@router.get("/{order_id}", response_model=OrderView)
async def get_order(order_id: OrderId, _: Reader, gateway: Gateway) -> OrderView:
    """One order with its timeline; a live order is read from its workflow."""
    return await gateway.get(order_id)


@router.post("/{order_id}/payment", response_model=OrderView)
async def confirm_payment(
    order_id: OrderId, payment: ConfirmPayment, _: Writer, gateway: Gateway
) -> OrderView:
    """Record the buyer's payment; idempotent on payment_id. Then stock is locked."""
    return await gateway.pay(order_id, payment)


@router.post("/{order_id}/shipment", response_model=OrderView)
async def confirm_shipment(
    order_id: OrderId, shipment: ConfirmShipment, _: Writer, gateway: Gateway
) -> OrderView:
    """The warehouse handed the parcel to a carrier."""
    return await gateway.command(order_id, OrderWorkflow.ship, shipment, Command.SHIP)


@router.post("/{order_id}/tracking", response_model=OrderView)
async def tracking_event(order_id: OrderId, update: TrackingUpdate, _: Writer, gateway: Gateway) -> OrderView:
    """A carrier event: in_transit or delivered."""
    command = Command.DELIVER if update.status == "delivered" else Command.IN_TRANSIT
    return await gateway.command(order_id, OrderWorkflow.track, update, command)


@router.post("/{order_id}/confirm-receipt", response_model=OrderView)
async def confirm_receipt(order_id: OrderId, _: Writer, gateway: Gateway) -> OrderView:
    """The buyer confirms the parcel arrived: the order completes."""
    return await gateway.command(
        order_id, OrderWorkflow.confirm_receipt, ConfirmReceipt(), Command.CONFIRM_RECEIPT
    )


@router.post("/{order_id}/cancel", response_model=OrderView)
async def cancel_order(order_id: OrderId, request: CancelOrder, _: Writer, gateway: Gateway) -> OrderView:
    """Cancel before shipment: locked stock is released and a paid order is refunded."""
    return await gateway.command(order_id, OrderWorkflow.cancel, request, Command.CANCEL)
