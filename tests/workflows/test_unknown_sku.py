"""An order for a SKU no warehouse has ever stocked, and `resolve-exception wait-for-restock`, on the
real time-skipping server and both databases: the order says what is wrong and what to do, an
operator maps the SKU (adds stock) and retries, and wait-for-restock cures a failed lock by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import OrderStatus, OrderView
from domain.operator import Action, ActionParams, OperatorAction
from services.inventory import InventoryService
from services.shipments import ShipmentService
from tests.support.factories import order, payment_for, settle_and_terminate, start_order
from tests.support.faults import refusing_writes
from tests.support.temporal import make_settings, running_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[WorkflowEnvironment, Settings, Engine]


@pytest.fixture
async def env(time_skipping_env: WorkflowEnvironment, engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    InventoryService(engine).set_on_hand("WH-SZ", "CASE-IP15", 10)
    async with running_worker(time_skipping_env.client, settings, engine):
        yield time_skipping_env, settings, engine
        await settle_and_terminate(time_skipping_env.client)


def act(kind: Action, reason: str = "checked", **params: Any) -> OperatorAction:
    return OperatorAction(action=kind, actor="lena@ops", reason=reason, params=ActionParams(**params))


async def refused(handle: Handle, update: Any, arg: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(update, arg)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


def kinds(view: OrderView) -> list[str]:
    return [event.kind for event in view.timeline]


async def test_unknown_sku_goes_to_exception_naming_it_and_retry_places_it_once_mapped(env: Env) -> None:
    time_env, settings, engine = env
    placed = order([("CASE-IP15", 1, "12.50"), ("MYSTERY-9", 2, "5.00")])
    handle = await start_order(time_env.client, settings, placed)

    view = await handle.query(OrderWorkflow.view)
    # not the misleading "stock is at or under safety stock" with a short payment hold
    assert (view.status, view.exception_reason) == (OrderStatus.EXCEPTION, "unknown_sku")
    assert (view.payment_due_at, view.hold_why) == (None, None)
    assert kinds(view) == ["placed", "unknown_sku"]
    assert "MYSTERY-9" in view.timeline[-1].detail
    assert "CASE-IP15" not in view.timeline[-1].detail
    assert "MYSTERY-9" in view.suggested_actions[0]
    assert "PUT /inventory" in view.suggested_actions[0]
    assert view.suggested_actions[-1].startswith("cancel:")
    assert InventoryService(engine).held_by(view.order_id) == {"lock": 0, "reserve": 0}

    # the buyer cannot pay into an order that cannot ship; restock cannot cure an unpaid order
    assert "exception (unknown_sku)" in await refused(handle, OrderWorkflow.pay, payment_for(placed))
    assert "not paid yet" in await refused(
        handle, OrderWorkflow.operate, act(Action.RESOLVE_EXCEPTION, resolution="wait-for-restock")
    )

    # a retry before the SKU is mapped says the same again
    again = await handle.execute_update(OrderWorkflow.operate, act(Action.RETRY, "tried"))
    assert (again.status, again.exception_reason) == (OrderStatus.EXCEPTION, "unknown_sku")
    assert kinds(again).count("unknown_sku") == 2

    await time_env.sleep(timedelta(days=6))  # no payment deadline runs while it waits for mapping
    assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.EXCEPTION

    InventoryService(engine).set_on_hand("WH-SZ", "MYSTERY-9", 4)  # mapped: stock booked in
    mapped = await handle.execute_update(OrderWorkflow.operate, act(Action.RETRY, "SKU mapped"))
    assert (mapped.status, mapped.exception_reason) == (OrderStatus.PENDING_PAYMENT, None)
    retried_at = mapped.timeline[-1].at
    assert mapped.payment_due_at is not None
    assert retried_at + timedelta(days=5) - mapped.payment_due_at < timedelta(seconds=5)  # from the retry
    assert kinds(mapped)[-3:] == ["stock_reserved", "payment_due", "operator_retry"]
    assert mapped.suggested_actions == []

    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (paid.status, paid.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    assert InventoryService(engine).held_by(paid.order_id) == {"lock": 3, "reserve": 0}


async def test_wait_for_restock_cures_a_failed_lock_by_itself(env: Env) -> None:
    time_env, settings, engine = env
    placed = order([("CASE-IP15", 2, "12.50")])
    handle = await start_order(time_env.client, settings, placed)
    with refusing_writes(engine, "stock_allocations", permanent=True):
        failed = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (failed.status, failed.exception_reason) == (OrderStatus.EXCEPTION, "lock_stock_failed")
    assert any(a.startswith("resolve-exception wait-for-restock") for a in failed.suggested_actions)

    # the cause is fixed: waiting for restock checks at once and locks the order, no retry needed
    await handle.execute_update(
        OrderWorkflow.operate, act(Action.RESOLVE_EXCEPTION, "DBA fixed it", resolution="wait-for-restock")
    )

    for _ in range(200):  # the check runs right after the update answered
        view = await handle.query(OrderWorkflow.view)
        if view.status == OrderStatus.STOCK_LOCKED:
            break
        await asyncio.sleep(0.05)
    assert (view.warehouse, view.waiting_for_restock, view.exception_reason) == ("WH-SZ", False, None)
    assert "the order is not in exception" in await refused(
        handle, OrderWorkflow.operate, act(Action.RESOLVE_EXCEPTION, resolution="wait-for-restock")
    )
    assert [r.status for r in ShipmentService(engine).for_order(view.order_id)] == ["requested"]
