"""/orders/stuck on the real time-skipping server, whose clock runs days ahead of this machine's: an
order that missed its ship-by there is listed, asked with this host's clock (one clock: Temporal's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import ConfirmShipment, OrderStatus
from services.orders import OrderStore, StuckOrder
from tests.support.factories import eventually, order, payment_for, settle_and_terminate, start_order
from tests.support.temporal import make_settings, running_worker
from tests.workflows.test_inventory_flow import stock
from workflows.order import OrderWorkflow

Env = tuple[WorkflowEnvironment, Settings, Engine]


@pytest.fixture
async def skipping(time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


async def test_an_order_late_on_temporals_clock_is_stuck_whatever_this_hosts_clock_says(
    skipping: Env,
) -> None:
    env, settings, engine = skipping
    stock(engine, "WH-A", {"LAMP-1": 5})
    stock(engine, "WH-B", {"BULB-2": 5})
    placed = order([("LAMP-1", 2, "30.00"), ("BULB-2", 1, "5.00")])
    handle = await start_order(env.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    part = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-A-0001", warehouse="WH-A")
    )
    assert part.status == OrderStatus.PARTIALLY_SHIPPED
    store = OrderStore(engine)
    assert store.stuck(datetime.now(UTC)) == []

    await env.sleep(settings.ship_within + timedelta(hours=3))  # Temporal's clock: days ahead now

    def late() -> list[StuckOrder]:
        return store.stuck(datetime.now(UTC))  # this host's clock, days behind the order's

    [stuck] = await eventually(late)
    assert stuck.order.order_id == part.order_id
    assert part.ship_by is not None
    assert stuck.since == part.ship_by
    assert stuck.reasons[0].startswith("not shipped; ship-by passed at ")
    assert stuck.reasons[0].endswith("still waiting for WH-B")
    assert stuck.suggested_actions == ["ask WH-B to ship; mark-shipped: if it left outside orderflow"]
    assert stuck.order.ship_late
