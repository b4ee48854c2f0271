"""The durable restock dispatcher on real Temporal servers and the real databases: scarce stock goes to
the highest-priority waiting order, through the dispatcher workflow; the sweep lives in Temporal, not in
the API process; a failing sweep is retried later; one sweep at a time, SKUs carried over continue-as-new."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from app.restock import stock_arrived
from core.config import Settings
from domain.access import Role
from domain.models import OrderStatus, OrderView, PlaceOrder
from domain.restock import RestockDispatch, RestockDispatcherView, StockArrived, dispatcher_id
from services.auth import ApiKeyService
from services.inventory import InventoryService
from services.orders import OrderStore
from tests.support.factories import (
    STARTED,
    eventually,
    order,
    payment_for,
    settle_and_terminate,
    settled,
    start_order,
    terminate_started,
)
from tests.support.temporal import make_settings, running_worker
from tests.support.warehouses import EVERYWHERE
from tests.workflows.test_inventory_flow import for_customer
from workflows.order import OrderWorkflow
from workflows.restock import RestockWorkflow

Dispatcher = WorkflowHandle[RestockWorkflow, None]


@pytest.fixture
async def cleanup() -> AsyncIterator[None]:
    yield
    await terminate_started()


# ------------------------------------------------------------------ helpers
def set_stock(engine: Engine, levels: dict[str, int]) -> None:
    inventory = InventoryService(engine)
    for sku, on_hand in levels.items():
        inventory.set_on_hand("WH-SZ", sku, on_hand)


def waiting(engine: Engine, sku: str) -> list[str]:
    return OrderStore(engine).waiting_for_stock([sku])


async def out_of_stock(client: Client, settings: Settings, placed: PlaceOrder) -> str:
    """Place and pay an order whose stock is gone: it waits in exception out_of_stock."""
    handle = await start_order(client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed, f"pay_{handle.id}"))
    assert (paid.status, paid.exception_reason) == (OrderStatus.EXCEPTION, "out_of_stock")
    return paid.order_id


async def scarce_lamp_orders(client: Client, settings: Settings, engine: Engine) -> dict[str, str]:
    """Three orders waiting for LAMP-1, placed lowest priority first (the oldest is not served first)."""
    set_stock(engine, {"LAMP-1": 0})
    ids = {
        "small": await out_of_stock(client, settings, order([("LAMP-1", 1, "10.00")])),  # priority 4
        "high": await out_of_stock(client, settings, order([("LAMP-1", 1, "250.00")])),  # priority 2
        "vip": await out_of_stock(client, settings, for_customer(order([("LAMP-1", 1, "20.00")]), "vip")),
    }
    expected = [ids["vip"], ids["high"], ids["small"]]
    assert await eventually(lambda: waiting(engine, "LAMP-1") == expected)  # the read model caught up
    return ids


def dispatcher(client: Client, settings: Settings) -> Dispatcher:
    handle = client.get_workflow_handle_for(RestockWorkflow.run, dispatcher_id(settings.task_queue))
    STARTED.append(handle)
    return handle


async def view_when(
    handle: Dispatcher, condition: Callable[[RestockDispatcherView], bool], what: str
) -> RestockDispatcherView:
    """Poll the dispatcher's view until `condition` holds, for at most 30 s."""
    for _ in range(600):
        try:
            view = await handle.query(RestockWorkflow.view)
        except RPCError:
            view = None  # not started yet, or between two runs
        if view is not None and condition(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"the dispatcher never {what}")


async def dispatched(handle: Dispatcher, sweeps: int) -> RestockDispatcherView:
    """The dispatcher's view once it has nothing pending and has done `sweeps` sweeps."""
    return await view_when(handle, lambda v: v.idle and v.sweeps >= sweeps, f"finished sweep {sweeps}")


async def events(handle: WorkflowHandle[Any, Any], kind: EventType.ValueType) -> list[HistoryEvent]:
    return [e for e in (await handle.fetch_history()).events if e.event_type == kind]


async def order_view(client: Client, order_id: str) -> OrderView:
    return await client.get_workflow_handle_for(OrderWorkflow.run, f"order-{order_id}").query(
        OrderWorkflow.view
    )


def locked(engine: Engine, sku: str) -> int:
    level = InventoryService(engine).get("WH-SZ", sku)
    assert level is not None
    return level.locked


# ------------------------------------------------------------------ priority, through the dispatcher
async def test_scarce_stock_goes_to_the_highest_priority_order_through_the_dispatcher(
    dev_env: WorkflowEnvironment, engine: Engine, cleanup: None
) -> None:
    client, settings = dev_env.client, make_settings()
    async with running_worker(client, settings, engine):
        ids = await scarce_lamp_orders(client, settings, engine)
        set_stock(engine, {"LAMP-1": 1})  # one unit for three orders
        started = await stock_arrived(client, settings.task_queue, ["LAMP-1"])
        handle = dispatcher(client, settings)
        assert started.id == handle.id == f"restock-dispatcher-{settings.task_queue}"

        view = await dispatched(handle, 1)
        assert view.last is not None
        assert (view.last.skus, view.last.waiting) == (["LAMP-1"], 3)
        assert view.last.locked == [ids["vip"]]
        assert view.last.still_short == [ids["high"], ids["small"]]  # tried in priority order
        vip, high, small = [await order_view(client, ids[name]) for name in ("vip", "high", "small")]
        assert vip.status == OrderStatus.STOCK_LOCKED
        assert [(o.status, o.waiting_for_restock) for o in (high, small)] == [
            (OrderStatus.EXCEPTION, True)
        ] * 2
        assert locked(engine, "LAMP-1") == 1

        # the sweep ran in the dispatcher workflow: its history holds the signal and the activity
        described = await handle.describe()
        assert (described.workflow_type, described.status) == (
            "RestockDispatcher",
            WorkflowExecutionStatus.RUNNING,
        )
        signalled = await events(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        assert [e.workflow_execution_signaled_event_attributes.signal_name for e in signalled] == [
            "stock_arrived"
        ]
        scheduled = await events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled] == [
            "dispatch_restock"
        ]
        assert len(await events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)) == 1
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert isinstance(metadata, WorkflowMetadata)
        assert metadata.current_details == (
            "Waiting for stock to arrive (a `stock_arrived` signal). "
            "Last sweep (LAMP-1): 1 locked, 2 still short, 0 skipped."
        )

        # two more units: the same dispatcher serves the other two, the higher priority first
        set_stock(engine, {"LAMP-1": 3})
        again = await stock_arrived(client, settings.task_queue, ["LAMP-1"])
        assert again.id == handle.id
        view = await dispatched(handle, 2)
        assert view.last is not None
        assert view.last.locked == [ids["high"], ids["small"]]
        assert locked(engine, "LAMP-1") == 3
        high_locked, small_locked = [
            next(e.at for e in (await order_view(client, ids[name])).timeline if e.kind == "stock_locked")
            for name in ("high", "small")
        ]
        assert high_locked < small_locked  # one at a time, the higher priority first
        assert await eventually(lambda: waiting(engine, "LAMP-1") == [])


# ------------------------------------------------------------------ the sweep outlives the API
async def test_stock_put_through_the_api_is_swept_after_the_api_has_shut_down(
    dev_env: WorkflowEnvironment, db_url: str, engine: Engine, cleanup: None
) -> None:
    client = dev_env.client
    settings = make_settings(temporal_address=client.service_client.config.target_host, database_url=db_url)
    async with running_worker(client, settings, engine):
        ids = await scarce_lamp_orders(client, settings, engine)

    # No worker runs now. The API takes the new stock, hands it to Temporal, and shuts down.
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"authorization": f"Bearer {key}"}
        ) as api:
            assert (await api.put("/warehouses/WH-SZ", json=EVERYWHERE)).status_code == 200
            response = await api.put("/inventory/WH-SZ/LAMP-1", json={"on_hand": 2})
            assert response.status_code == 200, response.text

    # Nothing ran yet, and nothing lives in an API process: the stock waits in the dispatcher's history.
    handle = dispatcher(client, settings)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    signalled = await events(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    arrived = signalled[0].workflow_execution_signaled_event_attributes
    decoded = await client.data_converter.decode(arrived.input.payloads, [StockArrived])
    assert decoded == [StockArrived(skus=["LAMP-1"])]
    assert locked(engine, "LAMP-1") == 0
    assert await run_in_threadpool(waiting, engine, "LAMP-1") == [ids["vip"], ids["high"], ids["small"]]

    async with running_worker(client, settings, engine):  # a worker comes back: the sweep happens
        view = await dispatched(handle, 1)
        assert view.last is not None
        assert (view.last.locked, view.last.still_short) == ([ids["vip"], ids["high"]], [ids["small"]])
        assert (await order_view(client, ids["small"])).status == OrderStatus.EXCEPTION
    assert locked(engine, "LAMP-1") == 2


# ------------------------------------------------------------------ failure: retried later, never failed
@pytest.fixture
async def skipping_cleanup(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[None]:
    yield
    await settle_and_terminate(time_skipping_env.client)


async def test_a_sweep_failing_on_an_unreachable_read_model_is_retried_later_not_failed(
    time_skipping_env: WorkflowEnvironment, engine: Engine, skipping_cleanup: None
) -> None:
    env = time_skipping_env
    client, settings = env.client, make_settings()
    async with running_worker(client, settings, engine):
        set_stock(engine, {"LAMP-1": 0})
        vip = await out_of_stock(client, settings, for_customer(order([("LAMP-1", 1, "20.00")]), "vip"))
        assert await eventually(lambda: waiting(engine, "LAMP-1") == [vip])
        await settled(client, f"order-{vip}")
        set_stock(engine, {"LAMP-1": 1})
        handle = dispatcher(client, settings)

        with read_model_offline(engine):
            await stock_arrived(client, settings.task_queue, ["LAMP-1"])
            view = await view_when(handle, lambda v: v.failures == 1, "failed a sweep")
            await settled(client, handle.id)
        assert (view.pending, view.sweeping, view.sweeps) == (["LAMP-1"], [], 0)  # kept for the retry
        assert view.last_error is not None
        assert "orders" in view.last_error
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert len(await events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)) == 1  # 3 attempts
        timers = await events(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        assert [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() for e in timers] == [
            timedelta(minutes=1)
        ]
        assert (await order_view(client, vip)).status == OrderStatus.EXCEPTION

        # the read model is back; nobody signals again: the dispatcher's timer retries the sweep
        await env.sleep(timedelta(minutes=2))
        view = await dispatched(handle, 1)
        assert view.last is not None
        assert (view.last.locked, view.failures, view.last_error) == ([vip], 0, None)
        assert (await order_view(client, vip)).status == OrderStatus.STOCK_LOCKED


@contextmanager
def read_model_offline(engine: Engine) -> Iterator[None]:
    """The read model's table is gone for a while (as good as an unreachable database for a sweep)."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE orders RENAME TO orders_offline"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE orders_offline RENAME TO orders"))


# ------------------------------------------------------------------ one sweep at a time; continue-as-new
async def test_stock_arriving_during_a_sweep_waits_for_it_and_is_carried_over_continue_as_new(
    dev_env: WorkflowEnvironment, engine: Engine, cleanup: None
) -> None:
    client, settings = dev_env.client, make_settings()
    restock_queue = make_settings()
    async with running_worker(client, settings, engine):
        set_stock(engine, {"LAMP-1": 0, "DESK-9": 0})
        lamp = await out_of_stock(client, settings, order([("LAMP-1", 1, "20.00")]))
        desk = await out_of_stock(client, settings, order([("DESK-9", 1, "90.00")]))
        assert await eventually(
            lambda: waiting(engine, "LAMP-1") == [lamp] and waiting(engine, "DESK-9") == [desk]
        )
    set_stock(engine, {"LAMP-1": 1, "DESK-9": 1})

    # The orders' worker is down, so the sweep for LAMP-1 waits on the order's answer: it stays open.
    async with running_worker(client, restock_queue, engine):
        first = await client.start_workflow(
            RestockWorkflow.run,
            RestockDispatch(batches_per_run=1),
            id=dispatcher_id(restock_queue.task_queue),
            task_queue=restock_queue.task_queue,
            start_signal="stock_arrived",
            start_signal_args=[StockArrived(skus=["LAMP-1"])],
        )
        handle = dispatcher(client, restock_queue)
        await view_when(handle, lambda v: v.sweeping == ["LAMP-1"], "started sweeping LAMP-1")
        await stock_arrived(client, restock_queue.task_queue, ["DESK-9"])
        view = await handle.query(RestockWorkflow.view)
        assert (view.sweeping, view.pending) == (["LAMP-1"], ["DESK-9"])  # no second sweep meanwhile
        assert len(await events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)) == 1

        async with running_worker(client, settings, engine):  # the orders answer again
            view = await dispatched(handle, 2)
            assert (await order_view(client, desk)).status == OrderStatus.STOCK_LOCKED

    # one sweep per run here: the first run continued as new, carrying the SKUs that came during it
    assert first.result_run_id
    closed = client.get_workflow_handle(handle.id, run_id=first.result_run_id)
    last = (await closed.fetch_history()).events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    carried = await client.data_converter.decode(
        last.workflow_execution_continued_as_new_event_attributes.input.payloads, [RestockDispatch]
    )
    assert [(c.pending, c.batches_per_run, c.sweeps) for c in carried] == [(["DESK-9"], 1, 1)]
    assert view.last is not None
    assert (view.last.skus, view.last.locked) == (["DESK-9"], [desk])
    assert (await handle.describe()).run_id != first.result_run_id
    assert locked(engine, "LAMP-1") == locked(engine, "DESK-9") == 1
