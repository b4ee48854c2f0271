"""Operator endpoints: interventions on one order or many, the stuck-order list, the audit trail."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from api.deps import Audit, Gateway, IdempotencyKey, Operator, OrderId, OrderIdText, Reader, Store
from api.errors import DATABASE_UNAVAILABLE
from api.routes.orders import COMMAND_RESPONSES, respond
from app.errors import Busy, CommandRefused, InvalidField, NotFound, OrderNotFound
from core.config import Duration
from domain.effects import AuditEntry
from domain.models import Model, OrderStatus, OrderView
from domain.operator import Action, ActionParams, ActionRequest, OperatorAction, Reason, missing_params

router = APIRouter(prefix="/orders", tags=["operators"])

BATCH_CONCURRENCY = 16
# After this many orders of one batch found the order service busy, the rest are not tried (503 each):
# with the worker down every order would wait out the answer timeout.
BATCH_BUSY_LIMIT = 3


class BatchActionRequest(Model):
    order_ids: Annotated[list[OrderIdText], Field(min_length=1, max_length=1000)]
    reason: Reason
    params: ActionParams = Field(default_factory=ActionParams)

    @field_validator("order_ids")
    @classmethod
    def _unique(cls, ids: list[str]) -> list[str]:
        return list(dict.fromkeys(ids))  # the same order twice in a file is acted on once


class BatchItem(BaseModel):
    order_id: str
    ok: bool  # carried out (200) or accepted and under way (202)
    status_code: int
    detail: str | None = None
    status: OrderStatus | None = None


class BatchResult(BaseModel):
    action: Action
    succeeded: int
    failed: int
    results: list[BatchItem]


class StuckOrderOut(BaseModel):
    order_id: str
    status: OrderStatus
    reasons: list[str]
    since: datetime
    channel: str
    channel_order_id: str
    country: str
    warehouse: str | None
    ui_url: str
    suggested_actions: list[str]  # what an operator can do, in words: "release: ..."


def _check_params(action: Action, params: ActionParams) -> None:
    missing = missing_params(action, params)
    if missing:
        raise InvalidField(missing[0], f"{action.value} needs this parameter")


@router.get("/stuck", response_model=list[StuckOrderOut])
async def stuck_orders(
    _: Reader,
    store: Store,
    gateway: Gateway,
    older_than: Annotated[Duration, Query(description="e.g. 30m, 4h, 2d")] = timedelta(0),
) -> list[StuckOrderOut]:
    """Orders in exception, on hold, or past a deadline, oldest first, each with its Web UI link."""
    found = await run_in_threadpool(store.stuck, datetime.now(UTC), older_than)
    return [
        StuckOrderOut(
            order_id=s.order.order_id,
            status=s.order.status,
            reasons=s.reasons,
            since=s.since,
            channel=s.order.channel.value,
            channel_order_id=s.order.channel_order_id,
            country=s.order.shipping_address.country,
            warehouse=s.order.warehouse,
            ui_url=gateway.ui_url(s.order.order_id),
            suggested_actions=s.suggested_actions,
        )
        for s in sorted(found, key=lambda s: s.since)
    ]


@router.post("/actions/{action}", response_model=BatchResult)
async def batch_action(
    action: Action, body: BatchActionRequest, caller: Operator, gateway: Gateway, key: IdempotencyKey = None
) -> BatchResult:
    """Apply one action to many orders, each independently; per-order results: 200 done, 202 under
    way, 404, 409 refused, 503 not done now (safe to repeat; with the same Idempotency-Key a repeated
    batch acts on each order at most once)."""
    _check_params(action, body.params)
    limit = asyncio.Semaphore(BATCH_CONCURRENCY)
    busy: list[str] = []

    async def one(order_id: str) -> BatchItem:
        request = OperatorAction(action=action, actor=caller.name, reason=body.reason, params=body.params)
        async with limit:
            if len(busy) >= BATCH_BUSY_LIMIT:
                detail = f"not tried: the order service is busy ({busy[0]})"
                return BatchItem(order_id=order_id, ok=False, status_code=503, detail=detail)
            try:
                answer = await gateway.operate(order_id, request, key)
            except NotFound as exc:
                return BatchItem(order_id=order_id, ok=False, status_code=404, detail=f"{exc.what} not found")
            except CommandRefused as exc:
                return BatchItem(order_id=order_id, ok=False, status_code=409, detail=exc.reason)
            except Busy as exc:
                busy.append(exc.detail)
                return BatchItem(order_id=order_id, ok=False, status_code=503, detail=exc.detail)
            except DATABASE_UNAVAILABLE:
                busy.append("the database is unavailable")
                detail = "the database is unavailable; retry later"
                return BatchItem(order_id=order_id, ok=False, status_code=503, detail=detail)
        code = 202 if answer.in_progress else 200
        return BatchItem(order_id=order_id, ok=True, status_code=code, status=answer.view.status)

    results = await asyncio.gather(*(one(order_id) for order_id in body.order_ids))
    succeeded = sum(item.ok for item in results)
    return BatchResult(action=action, succeeded=succeeded, failed=len(results) - succeeded, results=results)


@router.post("/{order_id}/actions/{action}", response_model=OrderView, responses=COMMAND_RESPONSES)
async def order_action(
    order_id: OrderId,
    action: Action,
    body: ActionRequest,
    caller: Operator,
    gateway: Gateway,
    response: Response,
    key: IdempotencyKey = None,
) -> OrderView:
    """An operator intervention; 409 with the reason when the order does not allow it now."""
    _check_params(action, body.params)
    request = OperatorAction(action=action, actor=caller.name, reason=body.reason, params=body.params)
    return respond(await gateway.operate(order_id, request, key), response)


@router.get("/{order_id}/audit", response_model=list[AuditEntry])
async def order_audit(order_id: OrderId, _: Reader, audit: Audit, store: Store) -> list[AuditEntry]:
    """Every operator action on the order: who, when, why, with what parameters."""
    if not await run_in_threadpool(store.known, order_id):
        raise OrderNotFound(order_id)
    return await run_in_threadpool(audit.for_order, order_id)
