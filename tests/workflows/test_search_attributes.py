"""Finding orders by warehouse in the Temporal Web UI: a split order is found under each of its
warehouses (Warehouses, a keyword list), on the real dev server; older orders keep their label."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import pytest
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import Address, Channel, Customer, OrderLine, OrderStatus, OrderView
from tests.support.factories import eventually, order, payment_for, settle_and_terminate, start_order
from tests.support.temporal import make_settings, running_worker
from tests.workflows.test_inventory_flow import stock
from workflows import presentation
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow

Env = tuple[Client, Settings, Engine]
T = TypeVar("T")


@pytest.fixture
async def dev(dev_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    async with running_worker(dev_env.client, settings, sqlite_engine):
        yield dev_env.client, settings, sqlite_engine
        await settle_and_terminate(dev_env.client)


async def ids_matching(client: Client, query: str) -> list[str]:
    return sorted([execution.id async for execution in client.list_workflows(query)])


async def test_a_split_order_is_found_under_each_of_its_warehouses(dev: Env) -> None:
    client, settings, engine = dev
    stock(engine, "WH-A", {"LAMP-1": 5})
    stock(engine, "WH-B", {"BULB-2": 5})
    stock(engine, "WH-C", {"LAMP-1": 5})
    split_order = order([("LAMP-1", 2, "30.00"), ("BULB-2", 1, "5.00")])
    split = await start_order(client, settings, split_order)
    assert (await split.execute_update(OrderWorkflow.pay, payment_for(split_order))).warehouse == "WH-A+WH-B"
    single_order = order([("BULB-2", 1, "5.00")])
    single = await start_order(client, settings, single_order)
    assert (
        await single.execute_update(OrderWorkflow.pay, payment_for(single_order, "pay_2"))
    ).warehouse == "WH-B"

    queue = f'TaskQueue = "{settings.task_queue}"'
    in_b = f'{queue} AND Warehouses = "WH-B"'
    assert await until(lambda: _both(client, in_b)) == sorted([split.id, single.id])
    assert await ids_matching(client, f'{queue} AND Warehouses = "WH-A"') == [split.id]
    assert await ids_matching(client, f'{queue} AND Warehouses = "WH-C"') == []
    both = f'{queue} AND Warehouses = "WH-A" AND Warehouses = "WH-B" AND OrderStatus = "stock_locked"'
    assert await ids_matching(client, both) == [split.id]

    attributes = (await split.describe()).typed_search_attributes
    assert attributes.get(sa.WAREHOUSES) == ["WH-A", "WH-B"]
    assert attributes.get(sa.WAREHOUSE) is None  # the old label is no longer written


async def until(probe: Callable[[], Awaitable[T]]) -> T:
    """tests.support.factories.eventually, typed for async probes (visibility lags a little)."""
    return await eventually(probe)


async def _both(client: Client, query: str) -> list[str] | None:
    found = await ids_matching(client, query)
    return found if len(found) == 2 else None


def view(warehouse: str | None) -> OrderView:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    return OrderView(
        order_id="ord_1",
        channel=Channel.SHOPIFY,
        channel_order_id="#1",
        status=OrderStatus.STOCK_LOCKED,
        customer=Customer(name="Ana Souza", email="ana@example.com"),
        shipping_address=Address(country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"),
        lines=[OrderLine(sku="LAMP-1", quantity=1, unit_price=Decimal("30.00"))],
        total=Decimal("30.00"),
        currency="EUR",
        created_at=at,
        updated_at=at,
        warehouse=warehouse,
    )


def test_orders_on_the_new_code_write_the_list_and_unset_the_label() -> None:
    values = presentation.search_attributes(view("WH-A+WH-B"))
    assert values[sa.WAREHOUSES.name] == ["WH-A", "WH-B"]
    assert values[sa.WAREHOUSE.name] is None
    assert presentation.search_attributes(view(None))[sa.WAREHOUSES.name] is None


def test_histories_recorded_before_keep_the_label_alone() -> None:
    values = presentation.search_attributes(view("WH-A+WH-B"), warehouse_list=False)
    assert values[sa.WAREHOUSE.name] == "WH-A+WH-B"
    assert sa.WAREHOUSES.name not in values
