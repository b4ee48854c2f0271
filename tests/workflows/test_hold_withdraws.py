"""A hold stops the warehouse too, on the real time-skipping server and both databases: open shipment
requests are withdrawn on hold and sent again on release; a parcel that left anyway is accepted and
flagged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import ConfirmShipment, OrderStatus, OrderView
from domain.operator import Action, ActionParams, OperatorAction
from services.inventory import InventoryService
from services.shipments import ShipmentService
from tests.support.factories import order, payment_for, settle_and_terminate, start_order
from tests.support.temporal import make_settings, running_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[WorkflowEnvironment, Settings, Engine]


@pytest.fixture
async def env(time_skipping_env: WorkflowEnvironment, engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    for sku in ("CASE-IP15", "USB-C-1M"):
        InventoryService(engine).set_on_hand("WH-SZ", sku, 10)
    async with running_worker(time_skipping_env.client, settings, engine):
        yield time_skipping_env, settings, engine
        await settle_and_terminate(time_skipping_env.client)


def act(kind: Action, reason: str, **params: Any) -> OperatorAction:
    return OperatorAction(action=kind, actor="lena@ops", reason=reason, params=ActionParams(**params))


def requests(engine: Engine, order_id: str) -> list[tuple[str, str]]:
    return [(r.warehouse, r.status) for r in ShipmentService(engine).for_order(order_id)]


async def locked_order(env: Env) -> tuple[Handle, OrderView]:
    time_env, settings, _ = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.status == OrderStatus.STOCK_LOCKED
    return handle, paid


async def test_hold_withdraws_the_shipment_request_and_release_sends_it_again(env: Env) -> None:
    time_env, _, engine = env
    handle, paid = await locked_order(env)
    assert requests(engine, paid.order_id) == [("WH-SZ", "requested")]

    held = await handle.execute_update(OrderWorkflow.operate, act(Action.HOLD, "address check"))
    assert requests(engine, paid.order_id) == [("WH-SZ", "cancelled")]  # the warehouse no longer picks it
    assert [(s.warehouse, s.status) for s in held.shipments] == [("WH-SZ", "locked")]
    assert held.warehouse == "WH-SZ"  # the stock stays locked there
    withdrawn = [e.detail for e in held.timeline if e.kind == "shipment_request_withdrawn"]
    assert withdrawn == ["WH-SZ: on hold: address check"]
    assert held.timeline[-1].detail == "lena@ops: address check (shipment request withdrawn from WH-SZ)"

    await time_env.sleep(timedelta(hours=1))
    assert requests(engine, paid.order_id) == [("WH-SZ", "cancelled")]
    released = await handle.execute_update(OrderWorkflow.operate, act(Action.RELEASE, "address confirmed"))
    assert requests(engine, paid.order_id) == [("WH-SZ", "requested")]
    assert [(s.warehouse, s.status) for s in released.shipments] == [("WH-SZ", "requested")]
    assert [e.kind for e in released.timeline].count("shipment_requested") == 2
    assert not released.shipped_while_held


async def test_a_parcel_shipped_while_held_is_accepted_and_flagged(env: Env) -> None:
    _, _, engine = env
    handle, paid = await locked_order(env)
    await handle.execute_update(OrderWorkflow.operate, act(Action.HOLD, "fraud check"))

    shipped = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="JD0146000077", warehouse="WH-SZ")
    )
    assert (shipped.status, shipped.on_hold, shipped.shipped_while_held) == (OrderStatus.SHIPPED, True, True)
    flagged = [e.detail for e in shipped.timeline if e.kind == "shipped_while_held"]
    assert flagged == [
        "WH-SZ shipped JD0146000077 although the order is on hold (fraud check); "
        "check with the warehouse and the buyer"
    ]
    level = InventoryService(engine).get("WH-SZ", "CASE-IP15")
    assert level is not None
    assert (level.on_hand, level.locked) == (8, 0)  # the goods left: stock deducted

    released = await handle.execute_update(OrderWorkflow.operate, act(Action.RELEASE, "cleared"))
    assert released.shipped_while_held  # stays visible after the hold ends
    # the warehouse's record says what happened (shipped), and release asks nothing to ship twice
    assert requests(engine, paid.order_id) == [("WH-SZ", "shipped")]
