"""Order endpoints: place, read, list, and drive an order through payment, shipment and tracking."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Gateway, IdempotencyKey, OrderId, Reader, Shops, Store, Writer
from api.errors import UnprocessableField
from app.orders import Answer
from domain.models import (
    CancelOrder,
    Channel,
    ConfirmPayment,
    ConfirmShipment,
    CountryCode,
    OrderStatus,
    OrderView,
    PlaceOrder,
    TrackingUpdate,
)

router = APIRouter(prefix="/orders", tags=["orders"])

SOURCE_HEADER = "X-Orderflow-Source"

_SOURCE_DOC = {
    SOURCE_HEADER: {
        "description": (
            "`workflow`: the order as it is now; `read-model`: the last copy the order saved (a closed "
            "order, or its workflow did not answer in time)"
        ),
        "schema": {"type": "string", "enum": ["workflow", "read-model"]},
    }
}
# Every command route: 200 when carried out, 202 when accepted but still under way.
COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The command was carried out: the order as it is now", "headers": _SOURCE_DOC},
    202: {
        "model": OrderView,
        "description": (
            "The command was accepted and will be carried out, but its step is still running or "
            "retrying (`pending` lists it when the order could say so): GET the order at Location to "
            "follow it; there is no need to repeat the command."
        ),
        "headers": {
            "Location": {"description": "the order to GET", "schema": {"type": "string"}},
            **_SOURCE_DOC,
        },
    },
}


def show(answer: Answer, response: Response) -> OrderView:
    """The view, saying where it came from."""
    response.headers[SOURCE_HEADER] = answer.source.value
    return answer.view


def respond(answer: Answer, response: Response) -> OrderView:
    """A command's answer: 200 when carried out, 202 Accepted with the order's Location when under way."""
    show(answer, response)
    if answer.in_progress:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/orders/{answer.view.order_id}"
    return answer.view


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


@router.post(
    "",
    response_model=OrderView,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "A new order, placed", "headers": _SOURCE_DOC},
        200: {
            "model": OrderView,
            "description": "This (shop_id, channel, channel_order_id) was placed before: the existing order",
            "headers": _SOURCE_DOC,
        },
    },
)
async def place_order(
    order: PlaceOrder, _: Writer, gateway: Gateway, shops: Shops, response: Response
) -> OrderView:
    """Place an order; the same (shop_id, channel, channel_order_id) again returns that order (200)."""
    await run_in_threadpool(shops.check_order_shop, order)
    answer = await gateway.place_order(order)
    if not answer.created:
        response.status_code = status.HTTP_200_OK
    return show(answer, response)


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


@router.get("/{order_id}", response_model=OrderView, responses={200: {"headers": _SOURCE_DOC}})
async def get_order(order_id: OrderId, _: Reader, gateway: Gateway, response: Response) -> OrderView:
    """One order with its timeline; a live order is read from its workflow, else from the read model."""
    return show(await gateway.get(order_id), response)


@router.post("/{order_id}/payment", response_model=OrderView, responses=COMMAND_RESPONSES)
async def confirm_payment(
    order_id: OrderId,
    payment: ConfirmPayment,
    _: Writer,
    gateway: Gateway,
    response: Response,
    key: IdempotencyKey = None,
) -> OrderView:
    """Record the buyer's payment; idempotent on payment_id. Then stock is locked."""
    return respond(await gateway.pay(order_id, payment, key), response)


@router.post("/{order_id}/shipment", response_model=OrderView, responses=COMMAND_RESPONSES)
async def confirm_shipment(
    order_id: OrderId,
    shipment: ConfirmShipment,
    _: Writer,
    gateway: Gateway,
    response: Response,
    key: IdempotencyKey = None,
) -> OrderView:
    """The warehouse handed the parcel to a carrier."""
    return respond(await gateway.ship(order_id, shipment, key), response)


@router.post("/{order_id}/tracking", response_model=OrderView, responses=COMMAND_RESPONSES)
async def tracking_event(
    order_id: OrderId,
    update: TrackingUpdate,
    _: Writer,
    gateway: Gateway,
    response: Response,
    key: IdempotencyKey = None,
) -> OrderView:
    """A carrier event: in_transit or delivered. Its time may be at most a day ahead of now."""
    return respond(await gateway.track(order_id, update, key), response)


@router.post("/{order_id}/confirm-receipt", response_model=OrderView, responses=COMMAND_RESPONSES)
async def confirm_receipt(
    order_id: OrderId, _: Writer, gateway: Gateway, response: Response, key: IdempotencyKey = None
) -> OrderView:
    """The buyer confirms the parcel arrived: the order completes."""
    return respond(await gateway.confirm_receipt(order_id, key), response)


@router.post("/{order_id}/cancel", response_model=OrderView, responses=COMMAND_RESPONSES)
async def cancel_order(
    order_id: OrderId,
    request: CancelOrder,
    _: Writer,
    gateway: Gateway,
    response: Response,
    key: IdempotencyKey = None,
) -> OrderView:
    """Cancel before shipment: locked stock is released and a paid order is refunded."""
    if request.origin != "orderflow":  # it would skip the shop cancel and the Stripe refund
        raise UnprocessableField(
            "origin", "only a store's signed webhook says the store cancelled already; leave origin out"
        )
    return respond(await gateway.cancel(order_id, request, key), response)
