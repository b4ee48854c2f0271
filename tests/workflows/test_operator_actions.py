"""Operator interventions (the `operate` update) and what the Temporal Web UI shows of an order.

Updates, refusals, search attributes and UI metadata run on the real dev server (`dev_env`);
anything that needs time to pass (hold, restock checks, retried steps) on the time-skipping server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from app.orders import OrderGateway
from core.config import Settings
from domain.effects import StockLevel
from domain.humanize import moment
from domain.models import Address, OrderStatus, OrderView, RestockCheck, TimelineEvent, TrackingUpdate
from domain.operator import Action, ActionParams, OperatorAction
from services.audit import AuditService
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from services.payments import PaymentService
from services.shipments import ShipmentService
from tests.support.factories import STARTED, eventually, order, payment_for, settle_and_terminate, start_order
from tests.support.temporal import make_settings, running_worker
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow

T = TypeVar("T")
Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[Client, Settings, Engine]
SkippingEnv = tuple[WorkflowEnvironment, Settings, Engine]

OPERATOR = "lena@ops"
VIENNA = Address(country="AT", city="Wien", postal_code="1010", line1="Stephansplatz 1")


def stock(engine: Engine, warehouse: str, levels: dict[str, int]) -> None:
    inventory = InventoryService(engine)
    for sku, on_hand in levels.items():
        inventory.set_on_hand(warehouse, sku, on_hand)


def level(engine: Engine, warehouse: str, sku: str) -> tuple[int, int, int]:
    found: StockLevel | None = InventoryService(engine).get(warehouse, sku)
    assert found is not None
    return found.on_hand, found.locked, found.available


@pytest.fixture
async def dev(dev_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    stock(sqlite_engine, "WH-SZ", {"CASE-IP15": 10, "USB-C-1M": 10})
    async with running_worker(dev_env.client, settings, sqlite_engine):
        yield dev_env.client, settings, sqlite_engine
        await settle_and_terminate(dev_env.client)


@pytest.fixture
async def skipping(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> AsyncIterator[SkippingEnv]:
    settings = make_settings()
    stock(sqlite_engine, "WH-SZ", {"CASE-IP15": 10, "USB-C-1M": 10})
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


def action(kind: Action, reason: str = "checked with the buyer", **params: Any) -> OperatorAction:
    return OperatorAction(action=kind, actor=OPERATOR, reason=reason, params=ActionParams(**params))


async def operate(
    handle: Handle, kind: Action, reason: str = "checked with the buyer", **params: Any
) -> OrderView:
    return await handle.execute_update(OrderWorkflow.operate, action(kind, reason, **params))


async def refusal(handle: Handle, request: OperatorAction) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(OrderWorkflow.operate, request)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "Refused"
    return cause.message


async def settled_history(handle: Handle) -> int:
    """The number of history events once the worker has nothing in flight for this order."""
    last = -1
    for _ in range(200):
        await handle.query(OrderWorkflow.view)
        described = (await handle.describe()).raw_description
        count = len((await handle.fetch_history()).events)
        busy = bool(described.pending_activities) or described.HasField("pending_workflow_task")
        if not busy and count == last:
            return count
        last = count
        await asyncio.sleep(0.05)
    raise AssertionError("the order's history never settled")


async def refused_without_trace(handle: Handle, kind: Action, **params: Any) -> str:
    """A validator refusal: the reason comes back and the workflow history does not grow."""
    before = await settled_history(handle)
    view_before = await handle.query(OrderWorkflow.view)
    reason = await refusal(handle, action(kind, **params))
    assert len((await handle.fetch_history()).events) == before, f"{kind} refusal left history events"
    assert await handle.query(OrderWorkflow.view) == view_before
    return reason


async def until(probe: Callable[[], Awaitable[T]]) -> T:
    """tests.support.factories.eventually, typed for async probes."""
    return await eventually(probe)


def kinds(view: OrderView, kind: str) -> list[TimelineEvent]:
    return [event for event in view.timeline if event.kind == kind]


# ------------------------------------------------------------------ dev server: accept and refuse
async def test_unpaid_order_accepts_what_applies_and_refuses_the_rest_without_history(dev: Env) -> None:
    client, settings, engine = dev
    handle = await start_order(client, settings, order())
    view = await handle.query(OrderWorkflow.view)
    latest = view.created_at + timedelta(days=7)

    assert await refused_without_trace(handle, Action.RETRY) == "there is no failed step to retry"
    assert await refused_without_trace(handle, Action.RELEASE) == "the order is not on hold"
    assert "not paid yet" in await refused_without_trace(handle, Action.REASSIGN_WAREHOUSE, warehouse="WH-DE")
    assert "not in exception" in await refused_without_trace(
        handle, Action.RESOLVE_EXCEPTION, resolution="cancel-and-refund"
    )
    assert await refused_without_trace(handle, Action.MARK_SHIPPED, carrier="DHL") == (
        "mark-shipped needs params.tracking_number"
    )
    assert "not paid yet" in await refused_without_trace(
        handle, Action.MARK_SHIPPED, carrier="DHL", tracking_number="JD0146000099"
    )
    assert await refused_without_trace(handle, Action.EXTEND_PAYMENT) == "extend-payment needs params.until"
    too_late = await refused_without_trace(handle, Action.EXTEND_PAYMENT, until=latest + timedelta(hours=1))
    assert moment(latest) in too_late  # e.g. 2026-12-04 05:56 UTC: minutes, with the zone
    assert "7 days after placement" in too_late
    assert "pick a later time" in await refused_without_trace(
        handle, Action.EXTEND_PAYMENT, until=view.created_at + timedelta(days=4)
    )

    extended = await operate(handle, Action.EXTEND_PAYMENT, until=latest)
    assert extended.payment_due_at == latest
    assert kinds(extended, "operator_extend_payment")[0].detail.endswith(
        f"(payment now due by {moment(latest)})"
    )
    held = await operate(handle, Action.HOLD, "buyer disputes the price")
    assert held.on_hold
    assert held.hold_reason == "buyer disputes the price"
    assert await refused_without_trace(handle, Action.HOLD) == "the order is already on hold"
    released = await operate(handle, Action.RELEASE, "price confirmed")
    assert not released.on_hold
    assert released.held_since is None
    noted = await operate(handle, Action.NOTE, "phone call", text="buyer pays by bank transfer on Monday")
    assert "buyer pays by bank transfer on Monday" in kinds(noted, "operator_note")[0].detail
    moved = await operate(handle, Action.CHANGE_ADDRESS, "buyer moved", address=VIENNA)
    assert moved.shipping_address == VIENNA
    assert moved.status == OrderStatus.PENDING_PAYMENT

    cancelled = await operate(handle, Action.CANCEL, "duplicate of another order")
    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.cancel_reason == "duplicate of another order"
    assert not kinds(cancelled, "refund_recorded")
    assert PaymentService(engine).refunds_for(cancelled.order_id) == []
    await handle.result()


async def test_shipped_order_refuses_cancel_address_and_reassign_and_mark_shipped_deducts_stock(
    dev: Env,
) -> None:
    client, settings, engine = dev
    stock(engine, "WH-DE", {"CASE-IP15": 5})  # no USB-C-1M there
    placed = order()
    handle = await start_order(client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (paid.status, paid.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    assert (
        await refused_without_trace(handle, Action.EXTEND_PAYMENT, until=paid.created_at + timedelta(days=6))
        == "the order is already paid"
    )
    assert await refused_without_trace(handle, Action.REASSIGN_WAREHOUSE, warehouse="WH-SZ") == (
        "stock is already locked in WH-SZ"
    )
    assert await refused_without_trace(handle, Action.RESOLVE_EXCEPTION, resolution="wait-for-restock") == (
        "the order is not in exception"
    )

    shipped = await operate(
        handle,
        Action.MARK_SHIPPED,
        "packed by hand at the fair",
        carrier="DHL",
        tracking_number="JD0146000012",
    )
    assert shipped.status == OrderStatus.SHIPPED
    assert [(s.carrier, s.tracking_number, s.warehouse, s.status) for s in shipped.shipments] == [
        ("DHL", "JD0146000012", "WH-SZ", "shipped")
    ]
    assert level(engine, "WH-SZ", "CASE-IP15") == (8, 0, 8)
    assert level(engine, "WH-SZ", "USB-C-1M") == (9, 0, 9)
    assert [e.kind for e in shipped.timeline][-2:] == ["shipped", "operator_mark_shipped"]
    assert kinds(shipped, "shipped")[0].detail == "DHL JD0146000012: 2 x CASE-IP15, 1 x USB-C-1M from WH-SZ"

    cancel = await refused_without_trace(handle, Action.CANCEL)
    assert "already shipped" in cancel
    assert "open a return" in cancel
    assert await refused_without_trace(handle, Action.CHANGE_ADDRESS, address=VIENNA) == (
        "the order has already shipped; the address can no longer change"
    )
    assert await refused_without_trace(handle, Action.REASSIGN_WAREHOUSE, warehouse="WH-DE") == (
        "the order has already shipped"
    )
    assert (
        await refused_without_trace(
            handle, Action.MARK_SHIPPED, carrier="UPS", tracking_number="1Z999AA10123"
        )
        == "the order has already shipped"
    )
    assert await refused_without_trace(handle, Action.RETRY) == "there is no failed step to retry"
    noted = await operate(handle, Action.NOTE, "customer service", text="buyer asked for the tracking link")
    assert kinds(noted, "operator_note")[-1].detail == (
        f"{OPERATOR}: customer service (buyer asked for the tracking link)"
    )
    assert level(engine, "WH-SZ", "CASE-IP15") == (8, 0, 8)


async def test_reassign_warehouse_moves_the_lock_all_or_nothing(dev: Env) -> None:
    client, settings, engine = dev
    stock(engine, "WH-DE", {"CASE-IP15": 5, "USB-C-1M": 0})
    placed = order()
    handle = await start_order(client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    order_id = paid.order_id
    assert paid.warehouse == "WH-SZ"
    before = {(w, s): level(engine, w, s) for w in ("WH-SZ", "WH-DE") for s in ("CASE-IP15", "USB-C-1M")}
    assert before[("WH-SZ", "CASE-IP15")] == (10, 2, 8)

    reason = await refusal(handle, action(Action.REASSIGN_WAREHOUSE, warehouse="WH-DE"))
    assert reason == "WH-DE cannot fill every line (USB-C-1M 0/1); stock stays where it was"
    after_refusal = await handle.query(OrderWorkflow.view)
    assert after_refusal.timeline == paid.timeline
    assert after_refusal.warehouse == "WH-SZ"
    assert {(w, s): level(engine, w, s) for (w, s) in before} == before
    assert [(r.warehouse, r.status) for r in ShipmentService(engine).for_order(order_id)] == [
        ("WH-SZ", "requested")
    ]
    assert AuditService(engine).for_order(order_id) == []

    stock(engine, "WH-DE", {"USB-C-1M": 4})
    moved = await operate(
        handle, Action.REASSIGN_WAREHOUSE, "WH-SZ is closed for inventory", warehouse="WH-DE"
    )
    assert (moved.status, moved.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-DE")
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 10)
    assert level(engine, "WH-SZ", "USB-C-1M") == (10, 0, 10)
    assert level(engine, "WH-DE", "CASE-IP15") == (5, 2, 3)
    assert level(engine, "WH-DE", "USB-C-1M") == (4, 1, 3)
    requests = {r.warehouse: r.status for r in ShipmentService(engine).for_order(order_id)}
    assert requests == {"WH-SZ": "cancelled", "WH-DE": "requested"}
    assert [e.kind for e in moved.timeline][len(paid.timeline) :] == [
        "shipment_request_withdrawn",
        "stock_locked",
        "operator_reassign_warehouse",
        "shipment_requested",
    ]
    assert kinds(moved, "shipment_request_withdrawn")[0].detail == "WH-SZ: moved to WH-DE"
    assert kinds(moved, "stock_locked")[-1].detail == "2 x CASE-IP15, 1 x USB-C-1M from WH-DE"
    assert kinds(moved, "operator_reassign_warehouse")[0].detail == (
        f"{OPERATOR}: WH-SZ is closed for inventory (stock moved from WH-SZ to WH-DE)"
    )
    assert paid.ship_by is not None
    assert moved.timeline[-1].detail == (f"2 x CASE-IP15, 1 x USB-C-1M from WH-DE, by {moment(paid.ship_by)}")
    assert [(s.warehouse, s.status) for s in moved.shipments] == [("WH-DE", "requested")]

    shipped = await operate(handle, Action.MARK_SHIPPED, "sent", carrier="DPD", tracking_number="DPD-0001234")
    assert [(s.warehouse, s.status, s.tracking_number) for s in shipped.shipments] == [
        ("WH-DE", "shipped", "DPD-0001234")
    ]
    assert level(engine, "WH-DE", "CASE-IP15") == (3, 0, 3)
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 10)


async def test_reassign_back_to_the_first_warehouse_asks_it_to_ship_again(dev: Env) -> None:
    client, settings, engine = dev
    stock(engine, "WH-DE", {"CASE-IP15": 5, "USB-C-1M": 5})
    placed = order()
    handle = await start_order(client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.warehouse == "WH-DE"  # it holds every line and ships to the buyer's country
    away = await operate(handle, Action.REASSIGN_WAREHOUSE, "closer to the buyer", warehouse="WH-SZ")
    assert away.warehouse == "WH-SZ"
    assert level(engine, "WH-DE", "CASE-IP15") == (5, 0, 5)
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 2, 8)
    back = await operate(handle, Action.REASSIGN_WAREHOUSE, "WH-SZ has no courier today", warehouse="WH-DE")
    assert back.warehouse == "WH-DE"
    assert level(engine, "WH-DE", "CASE-IP15") == (5, 2, 3)
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 10)
    assert [e.detail for e in kinds(back, "shipment_request_withdrawn")] == [
        "WH-DE: moved to WH-SZ",
        "WH-SZ: moved to WH-DE",
    ]
    assert kinds(back, "shipment_requested")[-1].detail.startswith(
        "2 x CASE-IP15, 1 x USB-C-1M from WH-DE, by "
    )
    assert [(s.warehouse, s.status) for s in back.shipments] == [("WH-DE", "requested")]
    pending = [r.order_id for r in ShipmentService(engine).pending("WH-DE")]
    assert pending == [back.order_id], "the warehouse holding the stock was never asked to ship"


async def test_audit_trail_records_who_when_why_for_accepted_actions_only(dev: Env) -> None:
    client, settings, engine = dev
    placed = order()
    handle = await start_order(client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    order_id = paid.order_id
    await handle.execute_update(
        OrderWorkflow.operate,
        action(Action.NOTE, "call log", text="buyer will collect in person"),
        id="note-1",
    )
    await operate(handle, Action.HOLD, "suspected fraud")
    await refusal(handle, action(Action.HOLD))
    await refusal(handle, action(Action.REASSIGN_WAREHOUSE, warehouse="WH-XX"))
    await operate(handle, Action.RELEASE, "card holder confirmed")
    await operate(handle, Action.CHANGE_ADDRESS, "typo in the street", address=VIENNA)
    # the warehouse already asked to ship gets the new address too
    assert [r.address for r in ShipmentService(engine).for_order(order_id)] == [
        VIENNA.model_dump(mode="json")
    ]
    cancelled = await operate(handle, Action.CANCEL, "buyer withdrew")

    audit = AuditService(engine).for_order(order_id)
    assert [(a.action, a.actor, a.reason) for a in audit] == [
        ("note", OPERATOR, "call log"),
        ("hold", OPERATOR, "suspected fraud"),
        ("release", OPERATOR, "card holder confirmed"),
        ("change-address", OPERATOR, "typo in the street"),
        ("cancel", OPERATOR, "buyer withdrew"),
    ]
    assert audit[0].action_id == "note-1"
    assert audit[0].params == {"text": "buyer will collect in person"}
    assert audit[1].params == {}
    assert audit[3].params == {"address": VIENNA.model_dump(mode="json")}
    # SQLite hands DateTime(timezone=True) back without tzinfo; the stored wall time is UTC
    audited_at = [a.at if a.at.tzinfo else a.at.replace(tzinfo=UTC) for a in audit]
    assert all(paid.created_at <= at <= cancelled.updated_at for at in audited_at)

    operator_events = [e for e in cancelled.timeline if e.kind.startswith("operator_")]
    assert [e.kind for e in operator_events] == [
        "operator_note",
        "operator_hold",
        "operator_release",
        "operator_change_address",
        "operator_cancel",
    ]
    assert [e.detail.split(" (")[0] for e in operator_events] == [f"{OPERATOR}: {a.reason}" for a in audit]
    assert [e.at for e in operator_events] == audited_at

    assert cancelled.status == OrderStatus.CANCELLED
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 10)
    refunds = PaymentService(engine).refunds_for(order_id)
    assert [(r.amount, r.currency, r.reason) for r in refunds] == [(placed.total, "USD", "buyer withdrew")]
    assert [r.status for r in ShipmentService(engine).for_order(order_id)] == ["cancelled"]
    await handle.result()


# ------------------------------------------------------------------ dev server: what the Web UI shows
def summary_of(client: Client, event: HistoryEvent) -> str:
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return ""
    decoded = client.data_converter.payload_converter.from_payload(event.user_metadata.summary, str)
    assert isinstance(decoded, str)
    return decoded


async def current_details(handle: Handle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert isinstance(metadata, WorkflowMetadata)
    return metadata.current_details


async def ids_matching(client: Client, query: str) -> list[str]:
    return [execution.id async for execution in client.list_workflows(query)]


async def test_web_ui_finds_stuck_orders_and_shows_what_they_wait_for(dev: Env) -> None:
    client, settings, engine = dev
    gateway = OrderGateway(client, OrderStore(engine), settings)
    stock(engine, "WH-SZ", {"SCREEN-X": 0})  # known, but none left: out of stock, not unknown_sku
    short_order = order([("CASE-IP15", 3, "12.50"), ("SCREEN-X", 1, "9.99")], currency="EUR")
    short, _ = await gateway.place(short_order)
    unpaid, _ = await gateway.place(order(channel_order_id="#A-1001"))
    stuck: Handle = client.get_workflow_handle_for(OrderWorkflow.run, f"order-{short.order_id}")
    held: Handle = client.get_workflow_handle_for(OrderWorkflow.run, f"order-{unpaid.order_id}")
    STARTED.extend([stuck, held])

    assert [e.kind for e in short.timeline] == ["placed", "stock_not_reserved", "payment_due"]
    paid = await stuck.execute_update(OrderWorkflow.pay, payment_for(short_order))
    assert (paid.status, paid.exception_reason) == (OrderStatus.EXCEPTION, "out_of_stock")
    assert paid.waiting_for_restock  # nobody has to act for it to lock when stock arrives
    await operate(held, Action.HOLD, "waiting for the buyer's VAT number")

    queue = f'TaskQueue="{settings.task_queue}"'
    exception_query = f'{queue} AND OrderStatus="exception" AND ExceptionReason="out_of_stock"'
    assert await until(lambda: ids_matching(client, exception_query)) == [stuck.id]
    assert (await client.count_workflows(exception_query)).count == 1
    assert await until(lambda: ids_matching(client, f"{queue} AND OnHold=true")) == [held.id]
    assert (
        await client.count_workflows(f'{queue} AND OnHold=true AND OrderStatus="pending_payment"')
    ).count == 1
    by_currency = f'{queue} AND DestinationCountry="DE" AND Currency="EUR" AND OrderTotal > 40'
    assert await until(lambda: ids_matching(client, by_currency)) == [stuck.id]

    described = await stuck.describe()
    assert await described.static_summary() == f"shopify order {short.channel_order_id}: 47.49 EUR to DE"
    attributes = described.typed_search_attributes
    assert attributes.get(sa.ORDER_STATUS) == "exception"
    assert attributes.get(sa.EXCEPTION_REASON) == "out_of_stock"
    assert attributes.get(sa.CHANNEL) == "shopify"
    assert attributes.get(sa.ORDER_TOTAL) == 47.49
    assert attributes.get(sa.ON_HOLD) is False
    assert attributes.get(sa.WAREHOUSE) is None
    assert attributes.get(sa.PAYMENT_DEADLINE) is None  # paid: no payment deadline any more
    assert attributes.get(sa.SHIP_BY) == paid.ship_by
    assert paid.status_since is not None
    details = await current_details(stuck)
    assert details.startswith(f"**exception** since {moment(paid.status_since)}")
    assert "Waiting for an operator to resolve **out_of_stock** (waiting for restock)." in details
    next_check = paid.status_since + settings.order_policy().restock_check_every
    assert f"Next: check for restocked stock at {moment(next_check)}." in details
    assert "+00:00" not in details  # times as people read them, not ISO strings

    held_description = await held.describe()
    assert await held_description.static_summary() == "shopify order #A-1001: 29.90 USD to DE"
    assert held_description.typed_search_attributes.get(sa.ON_HOLD) is True
    assert held_description.typed_search_attributes.get(sa.PAYMENT_DEADLINE) == unpaid.payment_due_at
    held_details = await current_details(held)
    assert "**pending_payment** since" in held_details
    assert "**On hold** since" in held_details
    assert "waiting for the buyer's VAT number" in held_details

    timers = [
        summary_of(client, e)
        for e in (await held.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert timers[0] == "payment reminder 1 of 3 (1 h): plain reminder"
    activities = [
        summary_of(client, e)
        for e in (await stuck.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    steps = [summary for summary in activities if summary != "project order to read model"]
    assert steps[:3] == [
        "reserve stock for the unpaid order",
        "record payment",
        "allocate and lock stock",
    ]

    assert (
        await refused_without_trace(stuck, Action.RESOLVE_EXCEPTION, resolution="wait-for-restock")
        == "the order is already waiting for restock"
    )
    # stock may have come in: the restock update makes the order try its lock at once
    retried = await stuck.execute_update(OrderWorkflow.restock, RestockCheck())
    assert (retried.status, retried.exception_reason, retried.waiting_for_restock) == (
        OrderStatus.EXCEPTION,
        "out_of_stock",
        True,
    )
    assert "(waiting for restock)" in await until(lambda: _details_with(stuck, "waiting for restock"))
    released = await operate(held, Action.RELEASE, "VAT number received")
    assert not released.on_hold
    assert await until(lambda: _no_hold(client, queue))

    # every timer and activity says what it is for
    summaries: list[str] = []
    for handle in (stuck, held):
        await settled_history(handle)
        for event in (await handle.fetch_history()).events:
            if event.event_type in (
                EventType.EVENT_TYPE_TIMER_STARTED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            ):
                summaries.append(summary_of(client, event))
    assert all(summaries), summaries
    assert {"lock stock after restock", "check for restocked stock", "write audit trail"} <= set(summaries)


async def _details_with(handle: Handle, text_part: str) -> str:
    details = await current_details(handle)
    return details if text_part in details else ""


async def _no_hold(client: Client, queue: str) -> bool:
    return (await client.count_workflows(f"{queue} AND OnHold=true")).count == 0


# ------------------------------------------------------------------ time-skipping server
async def test_wait_for_restock_locks_stock_by_itself_when_stock_arrives(skipping: SkippingEnv) -> None:
    env, settings, engine = skipping
    stock(engine, "WH-SZ", {"USB-C-1M": 0})
    placed, nudged_order = order(), order()
    handle = await start_order(env.client, settings, placed)
    nudged = await start_order(env.client, settings, nudged_order)
    assert await restock_refusal(nudged) == "the order is not waiting for stock"
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    await nudged.execute_update(OrderWorkflow.pay, payment_for(nudged_order, "pay_2"))
    assert [e.kind for e in paid.timeline][:3] == ["placed", "stock_not_reserved", "payment_due"]
    # out of stock: the order waits for restock by itself, checking every restock_check_every
    assert (paid.status, paid.exception_reason, paid.waiting_for_restock) == (
        OrderStatus.EXCEPTION,
        "out_of_stock",
        True,
    )
    assert paid.warehouse is None
    assert paid.shipments == []
    assert await refusal(handle, action(Action.RESOLVE_EXCEPTION, resolution="wait-for-restock")) == (
        "the order is already waiting for restock"
    )
    assert await handle.query(OrderWorkflow.view) == paid

    await env.sleep(timedelta(minutes=31))  # the first restock check found nothing
    for waiting in (handle, nudged):
        still = await waiting.query(OrderWorkflow.view)
        assert (still.status, still.waiting_for_restock) == (OrderStatus.EXCEPTION, True)
        assert not kinds(still, "stock_locked")
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 10)

    stock(engine, "WH-SZ", {"USB-C-1M": 3})
    # the restock update (sent when stock is booked in) makes an order try at once ...
    at_once = await nudged.execute_update(OrderWorkflow.restock, RestockCheck())
    assert (at_once.status, at_once.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    assert not at_once.waiting_for_restock
    assert at_once.exception_reason is None
    assert [e.kind for e in at_once.timeline][-2:] == ["stock_locked", "shipment_requested"]
    assert level(engine, "WH-SZ", "USB-C-1M") == (3, 1, 2)
    assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.EXCEPTION

    # ... and without it the next check locks the stock: no operator action needed. The checks
    # back off (30 min, then 60 min, ...): the second one is 90 min after the order went short.
    await env.sleep(timedelta(minutes=30))
    assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.EXCEPTION
    await env.sleep(timedelta(minutes=31))
    view = await handle.query(OrderWorkflow.view)
    assert (view.status, view.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    assert not view.waiting_for_restock
    assert view.exception_reason is None
    assert not [e for e in view.timeline if e.kind.startswith("operator_")]
    assert kinds(view, "stock_locked")[0].detail == "2 x CASE-IP15, 1 x USB-C-1M from WH-SZ"
    assert [e.kind for e in view.timeline][-2:] == ["stock_locked", "shipment_requested"]
    assert [(s.warehouse, s.status) for s in view.shipments] == [("WH-SZ", "requested")]
    assert level(engine, "WH-SZ", "USB-C-1M") == (3, 2, 1)
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 4, 6)
    assert [r.warehouse for r in ShipmentService(engine).for_order(view.order_id)] == ["WH-SZ"]
    assert AuditService(engine).for_order(view.order_id) == []
    assert await restock_refusal(handle) == "the order is not waiting for stock"


async def restock_refusal(handle: Handle) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(OrderWorkflow.restock, RestockCheck())
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "Refused"
    return cause.message


async def test_cancel_and_refund_resolution_refunds_the_buyer(skipping: SkippingEnv) -> None:
    env, settings, engine = skipping
    placed = order([("CASE-IP15", 50, "12.50")])
    handle = await start_order(env.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.exception_reason == "out_of_stock"
    view = await operate(
        handle, Action.RESOLVE_EXCEPTION, "supplier discontinued", resolution="cancel-and-refund"
    )
    assert view.status == OrderStatus.CANCELLED
    assert view.cancel_reason == "supplier discontinued"
    assert [e.kind for e in view.timeline][-3:] == [
        "refund_recorded",
        "cancelled",
        "operator_resolve_exception",
    ]
    refunds = PaymentService(engine).refunds_for(view.order_id)
    assert [(r.amount, r.currency, r.reason) for r in refunds] == [
        (placed.total, "USD", "supplier discontinued")
    ]
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 10)
    assert (await handle.result()).status == OrderStatus.CANCELLED


async def test_hold_pauses_reminders_and_auto_cancel_and_release_catches_up(skipping: SkippingEnv) -> None:
    env, settings, engine = skipping
    long_hold = await start_order(env.client, settings, order())
    short_hold = await start_order(env.client, settings, order())
    for handle in (long_hold, short_hold):
        await operate(handle, Action.HOLD, "buyer pays by bank transfer")

    await env.sleep(timedelta(days=1, hours=1))
    short = await operate(short_hold, Action.RELEASE, "transfer announced")
    release = kinds(short, "operator_release")[0]
    assert short.held_since is None
    held_for = release.at - kinds(short, "operator_hold")[0].at
    assert short.payment_due_at == short.created_at + timedelta(days=5) + held_for  # moved by the hold

    await env.sleep(timedelta(days=4, hours=23))  # ~6 days after placement: the 5-day deadline has passed
    view = await long_hold.query(OrderWorkflow.view)
    assert (view.status, view.on_hold, view.reminders_sent) == (OrderStatus.PENDING_PAYMENT, True, 0)
    assert not kinds(view, "payment_reminder")
    assert NotificationOutbox(engine).for_order(view.order_id) == []
    released = await operate(long_hold, Action.RELEASE, "transfer announced")
    assert released.payment_due_at == released.created_at + timedelta(days=7)  # capped

    caught_up = await until(lambda: _reminded(long_hold))
    assert caught_up is not None
    assert [e.detail.split(":")[0] for e in kinds(caught_up, "payment_reminder")] == [
        "reminder 3 of 3 (72 h)"
    ]
    short_now = await short_hold.query(OrderWorkflow.view)
    assert [e.detail.split(":")[0] for e in kinds(short_now, "payment_reminder")] == [
        "reminder 2 of 3 (24 h)",
        "reminder 3 of 3 (72 h)",
    ]
    assert short_now.status == OrderStatus.PENDING_PAYMENT

    await env.sleep(timedelta(days=1, minutes=1))
    for handle, due in ((short_hold, short.payment_due_at), (long_hold, released.payment_due_at)):
        final = await handle.result()
        assert final.status == OrderStatus.CANCELLED
        assert final.cancel_reason == "payment_timeout"
        assert due is not None
        assert due <= kinds(final, "cancelled")[0].at < due + timedelta(seconds=5)
    sent = await eventually(lambda: len(NotificationOutbox(engine).for_order(view.order_id)) == 2)
    assert sent
    assert [n.kind for n in NotificationOutbox(engine).for_order(view.order_id)] == [
        "payment_reminder_3",
        "order_cancelled",
    ]


async def _reminded(handle: Handle) -> OrderView | None:
    view = await handle.query(OrderWorkflow.view)
    return view if view.reminders_sent else None


async def test_held_paid_order_requests_no_shipment_until_released(skipping: SkippingEnv) -> None:
    env, settings, engine = skipping
    placed = order()
    handle = await start_order(env.client, settings, placed)
    await operate(handle, Action.HOLD, "address check with the buyer")
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (paid.status, paid.on_hold, paid.warehouse) == (OrderStatus.PAID, True, None)

    await env.sleep(timedelta(days=3))  # past ship-by (48 h after payment)
    view = await handle.query(OrderWorkflow.view)
    assert (view.status, view.ship_late) == (OrderStatus.PAID, False)
    assert not kinds(view, "ship_deadline_missed")
    assert ShipmentService(engine).for_order(view.order_id) == []
    assert view.shipments == []
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 0, 8)  # still only reserved, not locked

    released = await operate(handle, Action.RELEASE, "address confirmed")
    assert (released.status, released.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    assert released.ship_by == paid.ship_by  # ship-by does not move with a hold
    requests = ShipmentService(engine).for_order(view.order_id)
    assert [(r.warehouse, r.status) for r in requests] == [("WH-SZ", "requested")]
    assert [(s.warehouse, s.status) for s in released.shipments] == [("WH-SZ", "requested")]
    assert level(engine, "WH-SZ", "CASE-IP15") == (10, 2, 8)
    late = await until(lambda: _late(handle))
    assert late is not None
    assert len(kinds(late, "ship_deadline_missed")) == 1


async def _late(handle: Handle) -> OrderView | None:
    view = await handle.query(OrderWorkflow.view)
    return view if view.ship_late else None


async def test_hold_on_a_delivered_order_moves_confirm_by_and_pauses_auto_complete(
    skipping: SkippingEnv,
) -> None:
    env, settings, _ = skipping
    placed = order()
    handle = await start_order(env.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    await operate(
        handle, Action.MARK_SHIPPED, "courier picked up", carrier="UPS", tracking_number="1Z999AA10001"
    )
    shipped = await handle.query(OrderWorkflow.view)
    delivered = await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="delivered", at=shipped.updated_at)
    )
    assert delivered.confirm_by is not None
    await operate(handle, Action.HOLD, "buyer reports a damaged parcel")
    await env.sleep(timedelta(days=10))  # past the 7-day confirmation window
    view = await handle.query(OrderWorkflow.view)
    assert (view.status, view.on_hold) == (OrderStatus.DELIVERED, True)
    released = await operate(handle, Action.RELEASE, "damage was cosmetic, buyer keeps it")
    held_for = kinds(released, "operator_release")[0].at - kinds(released, "operator_hold")[0].at
    assert released.confirm_by == delivered.confirm_by + held_for
    assert released.status == OrderStatus.DELIVERED
    final = await handle.result()
    assert final.status == OrderStatus.COMPLETED
    assert released.confirm_by <= kinds(final, "completed")[0].at


async def test_release_after_the_seven_day_limit_cancels_without_a_last_reminder(
    skipping: SkippingEnv,
) -> None:
    env, settings, engine = skipping
    handle = await start_order(env.client, settings, order())
    await operate(handle, Action.HOLD, "buyer abroad")
    await env.sleep(timedelta(days=8))
    released = await operate(handle, Action.RELEASE, "buyer unreachable")
    assert released.payment_due_at == released.created_at + timedelta(days=7)
    final = await handle.result()
    assert (final.status, final.cancel_reason) == (OrderStatus.CANCELLED, "payment_timeout")
    assert final.reminders_sent == 0, "a 'please pay' mail went out with the cancellation"
    outbox = NotificationOutbox(engine)
    assert await until(lambda: _outbox_kinds(outbox, final.order_id)) == ["order_cancelled"]


async def _outbox_kinds(outbox: NotificationOutbox, order_id: str) -> list[str]:
    return [n.kind for n in outbox.for_order(order_id)]


async def test_order_that_missed_ship_by_keeps_its_ship_by_search_attribute(skipping: SkippingEnv) -> None:
    env, settings, _ = skipping
    placed = order()
    handle = await start_order(env.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.ship_by is not None
    assert await upserted_ship_by(env.client, handle) == paid.ship_by.isoformat()
    await env.sleep(timedelta(hours=49))
    late = await handle.query(OrderWorkflow.view)
    assert late.ship_late
    assert late.ship_by == paid.ship_by
    # the time-skipping server cannot describe Datetime attributes: read what the workflow upserted
    assert await upserted_ship_by(env.client, handle) == paid.ship_by.isoformat(), (
        "a late order drops out of 'ShipBy < now' searches in the Web UI"
    )


async def upserted_ship_by(client: Client, handle: Handle) -> Any:
    """The ShipBy value of the workflow's latest search-attribute upsert that touched it (None: unset)."""
    value: Any = "never upserted"
    for event in (await handle.fetch_history()).events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if sa.SHIP_BY.name in fields:
                value = client.data_converter.payload_converter.from_payload(fields[sa.SHIP_BY.name])
    return value
