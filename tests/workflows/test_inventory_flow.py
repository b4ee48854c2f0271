"""Multi-warehouse inventory on the real time-skipping Temporal server: split orders shipped and tracked
parcel by parcel, reservations and their release, the payment hold chosen from stock pressure, and
order priority carried by the order's activity tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.effects import StockLevel
from domain.humanize import moment
from domain.models import (
    CancelOrder,
    ConfirmReceipt,
    ConfirmShipment,
    Customer,
    OrderStatus,
    OrderView,
    PlaceOrder,
    TimelineEvent,
    TrackingUpdate,
)
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.shipments import ShipmentService
from tests.support.factories import (
    eventually,
    order,
    payment_for,
    settle_and_terminate,
    settled,
    start_order,
)
from tests.support.temporal import make_settings, running_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[WorkflowEnvironment, Settings, Engine]


@pytest.fixture
async def skipping(time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    stock(sqlite_engine, "WH-SZ", {"CASE-IP15": 10, "USB-C-1M": 10})
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


@pytest.fixture
async def pressure(time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    """The payment hold chosen from the stock of the order's items (the product default)."""
    settings = make_settings(payment_hold_rule="stock_pressure")
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


def stock(engine: Engine, warehouse: str, levels: dict[str, int], safety_stock: int | None = None) -> None:
    inventory = InventoryService(engine)
    for sku, on_hand in levels.items():
        inventory.set_on_hand(warehouse, sku, on_hand, safety_stock=safety_stock)


def level(engine: Engine, warehouse: str, sku: str) -> StockLevel:
    found = InventoryService(engine).get(warehouse, sku)
    assert found is not None
    return found


def kinds(view: OrderView, kind: str) -> list[TimelineEvent]:
    return [event for event in view.timeline if event.kind == kind]


async def refused(handle: Handle, update: Any, arg: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(update, arg)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "Refused"
    return cause.message


def for_customer(placed: PlaceOrder, tier: Literal["standard", "vip"]) -> PlaceOrder:
    customer = Customer(name="Mei Chen", email="mei@example.com", tier=tier)
    return placed.model_copy(update={"customer": customer})


# ------------------------------------------------------------------ split order, parcel by parcel
async def test_split_order_ships_and_tracks_each_parcel_and_completes_when_all_arrived(skipping: Env) -> None:
    env, settings, engine = skipping
    stock(engine, "WH-A", {"LAMP-1": 5})
    stock(engine, "WH-B", {"BULB-2": 5})
    placed = order([("LAMP-1", 2, "30.00"), ("BULB-2", 1, "5.00")])
    handle = await start_order(env.client, settings, placed)
    unpaid = await handle.query(OrderWorkflow.view)
    assert kinds(unpaid, "stock_reserved")[0].detail == "2 x LAMP-1 from WH-A; 1 x BULB-2 from WH-B"

    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.status == OrderStatus.STOCK_LOCKED
    assert paid.warehouse == "WH-A+WH-B"
    assert [(s.warehouse, s.status) for s in paid.shipments] == [("WH-A", "requested"), ("WH-B", "requested")]
    assert [[(li.sku, li.quantity) for li in s.lines] for s in paid.shipments] == [
        [("LAMP-1", 2)],
        [("BULB-2", 1)],
    ]
    assert kinds(paid, "stock_locked")[0].detail == (
        "2 x LAMP-1 from WH-A; 1 x BULB-2 from WH-B (split into 2 parcels)"
    )
    assert len(kinds(paid, "shipment_requested")) == 2
    requests = sorted(ShipmentService(engine).for_order(paid.order_id), key=lambda r: r.warehouse)
    assert [(r.warehouse, r.status) for r in requests] == [("WH-A", "requested"), ("WH-B", "requested")]
    assert [[(li["sku"], li["quantity"]) for li in r.lines] for r in requests] == [
        [("LAMP-1", 2)],
        [("BULB-2", 1)],
    ]
    assert (level(engine, "WH-A", "LAMP-1").locked, level(engine, "WH-B", "BULB-2").locked) == (2, 1)

    first = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-A-0001", warehouse="WH-A")
    )
    assert first.status == OrderStatus.PARTIALLY_SHIPPED
    assert [(s.warehouse, s.status, s.tracking_number) for s in first.shipments] == [
        ("WH-A", "shipped", "DHL-A-0001"),
        ("WH-B", "requested", None),
    ]
    assert first.ship_by == paid.ship_by
    assert "already shipped (DHL-A-0001)" in await refused(
        handle,
        OrderWorkflow.ship,
        ConfirmShipment(carrier="DHL", tracking_number="DHL-A-0002", warehouse="WH-A"),
    )
    assert "locked in WH-A+WH-B, not in WH-SZ" in await refused(
        handle,
        OrderWorkflow.ship,
        ConfirmShipment(carrier="DHL", tracking_number="DHL-Z-0001", warehouse="WH-SZ"),
    )
    # one parcel left: the ship-by deadline still stands for the other
    assert paid.ship_by is not None
    await env.sleep(paid.ship_by - first.updated_at + timedelta(minutes=5))
    late = await handle.query(OrderWorkflow.view)
    assert late.status == OrderStatus.PARTIALLY_SHIPPED
    assert late.ship_late
    assert len(kinds(late, "ship_deadline_missed")) == 1
    unshipped = [s.warehouse for s in late.shipments if s.status == "requested"]
    assert kinds(late, "ship_deadline_missed")[0].detail.endswith(f"still waiting for {unshipped[0]}")
    assert {(s.status, s.late, s.ship_by) for s in late.shipments} == {
        ("shipped", False, paid.ship_by),
        ("requested", True, paid.ship_by),
    }, "each parcel carries its ship-by; only the one still unshipped is late"

    second = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="UPS", tracking_number="UPS-B-0001", warehouse="WH-B")
    )
    assert second.status == OrderStatus.SHIPPED
    assert [s.status for s in second.shipments] == ["shipped", "shipped"]
    at = second.updated_at

    assert "several parcels: name the tracking_number" in await refused(
        handle, OrderWorkflow.track, TrackingUpdate(status="delivered", at=at)
    )
    assert "no parcel of this order has tracking number NOPE-0001" in await refused(
        handle, OrderWorkflow.track, TrackingUpdate(status="delivered", tracking_number="NOPE-0001", at=at)
    )
    one = await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="delivered", tracking_number="DHL-A-0001", at=at)
    )
    assert one.status == OrderStatus.IN_TRANSIT
    assert [s.status for s in one.shipments] == ["delivered", "shipped"]
    assert one.confirm_by is None
    assert await refused(handle, OrderWorkflow.confirm_receipt, ConfirmReceipt()) == (
        "the order has not been delivered yet"
    )
    assert "already delivered" in await refused(
        handle, OrderWorkflow.track, TrackingUpdate(status="delivered", tracking_number="DHL-A-0001", at=at)
    )

    moving = await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="in_transit", tracking_number="UPS-B-0001", at=at)
    )
    assert moving.status == OrderStatus.IN_TRANSIT
    both = await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="delivered", tracking_number="UPS-B-0001", at=at)
    )
    assert both.status == OrderStatus.DELIVERED
    assert [s.status for s in both.shipments] == ["delivered", "delivered"]
    assert both.confirm_by == kinds(both, "delivered")[-1].at + settings.order_policy().confirm_window
    done = await handle.execute_update(OrderWorkflow.confirm_receipt, ConfirmReceipt())
    assert done.status == OrderStatus.COMPLETED
    final = await handle.result()
    assert final.status == OrderStatus.COMPLETED

    lamp, bulb = level(engine, "WH-A", "LAMP-1"), level(engine, "WH-B", "BULB-2")
    assert (lamp.on_hand, lamp.locked, lamp.reserved) == (3, 0, 0)
    assert (bulb.on_hand, bulb.locked, bulb.reserved) == (4, 0, 0)
    closed = sorted(ShipmentService(engine).for_order(final.order_id), key=lambda r: r.warehouse)
    assert [(r.warehouse, r.status) for r in closed] == [("WH-A", "shipped"), ("WH-B", "shipped")]
    outbox = NotificationOutbox(engine)
    await eventually(lambda: len(outbox.for_order(final.order_id)) == 2)
    mails = {n.kind: n for n in outbox.for_order(final.order_id)}
    assert set(mails) == {"order_shipped:WH-A", "order_shipped:WH-B"}
    assert "DHL-A-0001" in mails["order_shipped:WH-A"].body_text
    assert "UPS-B-0001" in mails["order_shipped:WH-B"].body_text


async def test_shipping_one_parcel_closes_only_that_warehouses_shipment_request(skipping: Env) -> None:
    env, settings, engine = skipping
    stock(engine, "WH-A", {"LAMP-1": 5})
    stock(engine, "WH-B", {"BULB-2": 5})
    placed = order([("LAMP-1", 1, "30.00"), ("BULB-2", 1, "5.00")])
    handle = await start_order(env.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    shipped = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-A-0001", warehouse="WH-A")
    )
    assert shipped.status == OrderStatus.PARTIALLY_SHIPPED
    requests = sorted(ShipmentService(engine).for_order(shipped.order_id), key=lambda r: r.warehouse)
    # WH-B has not shipped its parcel: its request must stay open on its pick list
    assert [(r.warehouse, r.status) for r in requests] == [("WH-A", "shipped"), ("WH-B", "requested")]
    assert [r.order_id for r in ShipmentService(engine).pending("WH-B")] == [shipped.order_id]


async def test_cancelling_a_split_order_releases_and_withdraws_every_parcel(skipping: Env) -> None:
    env, settings, engine = skipping
    stock(engine, "WH-A", {"LAMP-1": 5})
    stock(engine, "WH-B", {"BULB-2": 5})
    placed = order([("LAMP-1", 2, "30.00"), ("BULB-2", 1, "5.00")])
    handle = await start_order(env.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    view = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
    assert view.status == OrderStatus.CANCELLED
    assert kinds(view, "stock_released")[0].detail.startswith("3 unit(s)")
    assert [e.detail for e in kinds(view, "shipment_request_withdrawn")] == [
        "WH-A: buyer changed mind",
        "WH-B: buyer changed mind",
    ]
    assert [(s.warehouse, s.status) for s in view.shipments] == [("WH-A", "withdrawn"), ("WH-B", "withdrawn")]
    requests = sorted(ShipmentService(engine).for_order(view.order_id), key=lambda r: r.warehouse)
    assert [r.status for r in requests] == ["cancelled", "cancelled"]
    for warehouse, sku in (("WH-A", "LAMP-1"), ("WH-B", "BULB-2")):
        found = level(engine, warehouse, sku)
        assert (found.on_hand, found.locked, found.reserved, found.available) == (5, 0, 0, 5)
    await handle.result()


# ------------------------------------------------------------------ reservation and release
async def test_placing_reserves_and_cancel_auto_cancel_and_payment_each_end_the_reservation(
    skipping: Env,
) -> None:
    env, settings, engine = skipping
    placed = order()  # 2 x CASE-IP15, 1 x USB-C-1M
    cancelled = await start_order(env.client, settings, placed)
    view = await cancelled.query(OrderWorkflow.view)
    assert [e.kind for e in view.timeline] == ["placed", "stock_reserved", "payment_due"]
    assert kinds(view, "stock_reserved")[0].detail == "2 x CASE-IP15, 1 x USB-C-1M from WH-SZ"
    case = level(engine, "WH-SZ", "CASE-IP15")
    assert (case.on_hand, case.reserved, case.locked, case.available) == (10, 2, 0, 8)
    assert level(engine, "WH-SZ", "USB-C-1M").reserved == 1

    # the buyer cancels the unpaid order: the reservation goes back
    gone = await cancelled.execute_update(OrderWorkflow.cancel, CancelOrder(reason="ordered by mistake"))
    assert gone.status == OrderStatus.CANCELLED
    assert kinds(gone, "stock_released")[0].detail.startswith("3 unit(s)")
    assert not kinds(gone, "refund_recorded")
    case = level(engine, "WH-SZ", "CASE-IP15")
    assert (case.reserved, case.available) == (0, 10)
    assert level(engine, "WH-SZ", "USB-C-1M").reserved == 0

    # nobody pays: the auto-cancel after the hold gives the reservation back too
    expired = await start_order(env.client, settings, order([("CASE-IP15", 4, "12.50")]))
    waiting = await expired.query(OrderWorkflow.view)
    assert level(engine, "WH-SZ", "CASE-IP15").reserved == 4
    assert waiting.payment_due_at == waiting.created_at + timedelta(days=5)
    await env.sleep(waiting.payment_due_at - waiting.updated_at + timedelta(minutes=1))
    timed_out = await expired.query(OrderWorkflow.view)
    assert (timed_out.status, timed_out.cancel_reason) == (OrderStatus.CANCELLED, "payment_timeout")
    assert kinds(timed_out, "stock_released")[0].detail.startswith("4 unit(s)")
    case = level(engine, "WH-SZ", "CASE-IP15")
    assert (case.reserved, case.locked, case.available) == (0, 0, 10)
    await expired.result()

    # paying turns the reservation into the lock, counted once
    kept = order()
    handle = await start_order(env.client, settings, kept)
    assert level(engine, "WH-SZ", "CASE-IP15").reserved == 2
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(kept))
    assert paid.status == OrderStatus.STOCK_LOCKED
    case, usb = level(engine, "WH-SZ", "CASE-IP15"), level(engine, "WH-SZ", "USB-C-1M")
    assert (case.reserved, case.locked, case.available) == (0, 2, 8)
    assert (usb.reserved, usb.locked, usb.available) == (0, 1, 9)
    assert not kinds(paid, "stock_released")


async def test_an_order_with_nothing_to_reserve_waits_unreserved(skipping: Env) -> None:
    env, settings, engine = skipping
    placed = order([("CASE-IP15", 11, "12.50")])
    handle = await start_order(env.client, settings, placed)
    view = await handle.query(OrderWorkflow.view)
    assert [e.kind for e in view.timeline] == ["placed", "stock_not_reserved", "payment_due"]
    assert level(engine, "WH-SZ", "CASE-IP15").reserved == 0
    gone = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="too many"))
    assert not kinds(gone, "stock_released")
    await handle.result()


# ------------------------------------------------------------------ payment hold from stock pressure
async def test_payment_hold_follows_the_stock_pressure_of_the_items(pressure: Env) -> None:
    env, settings, engine = pressure
    inventory = InventoryService(engine)
    inventory.set_on_hand("WH-SZ", "AMPLE-1", 100, safety_stock=10)
    inventory.set_on_hand("WH-SZ", "EDGE-AMPLE", 21, safety_stock=10)  # 20 left: exactly twice safety
    inventory.set_on_hand("WH-SZ", "TIGHT-1", 16, safety_stock=10)  # 15 left: under twice safety
    inventory.set_on_hand("WH-SZ", "SCARCE-1", 10, safety_stock=9)  # 9 left: at safety stock
    inventory.set_on_hand("WH-SZ", "NO-SAFETY", 1)  # 0 left, safety 0: at safety stock

    cases = {
        "ample": ([("AMPLE-1", 1, "10.00")], 7, "stock of every item is ample"),
        "edge": ([("EDGE-AMPLE", 1, "10.00")], 7, "stock of every item is ample"),
        "tight": ([("TIGHT-1", 1, "10.00")], 5, "stock of TIGHT-1 is getting low"),
        "scarce": ([("SCARCE-1", 1, "10.00")], 3, "stock of SCARCE-1 is at or under safety stock"),
        "last": ([("NO-SAFETY", 1, "10.00")], 3, "stock of NO-SAFETY is at or under safety stock"),
        "mixed": (
            [("AMPLE-1", 1, "10.00"), ("TIGHT-1", 1, "10.00")],
            5,
            "stock of TIGHT-1 is getting low",
        ),
    }
    handles: dict[str, Handle] = {}
    for name, (lines, days, why) in cases.items():
        handle = await start_order(env.client, settings, order(lines))
        handles[name] = handle
        view = await handle.query(OrderWorkflow.view)
        assert kinds(view, "stock_reserved"), name
        assert view.hold_why == why, name
        assert view.payment_due_at == view.created_at + timedelta(days=days), name
        assert kinds(view, "payment_due")[0].detail == (
            f"by {moment(view.payment_due_at)} (in {days} days): {why}"
        )

    # auto-cancel exactly when each hold ends: the ample order outlives the standard five days
    start = (await handles["ample"].query(OrderWorkflow.view)).created_at
    await env.sleep(timedelta(days=5, hours=1))
    for name in ("ample", "edge"):
        still = await handles[name].query(OrderWorkflow.view)
        assert still.status == OrderStatus.PENDING_PAYMENT, name
    assert level(engine, "WH-SZ", "AMPLE-1").reserved == 1  # the ample order's; the mixed one's went back
    for name, (_, days, _) in cases.items():
        final = await handles[name].result()
        assert (final.status, final.cancel_reason) == (OrderStatus.CANCELLED, "payment_timeout"), name
        assert final.payment_due_at is None
        due = final.created_at + timedelta(days=days)
        cancelled_at = kinds(final, "cancelled")[0].at
        assert due <= cancelled_at < due + timedelta(seconds=5), name
    assert start + timedelta(days=7) <= kinds(await handles["ample"].result(), "cancelled")[0].at
    for sku in ("AMPLE-1", "EDGE-AMPLE", "TIGHT-1", "SCARCE-1", "NO-SAFETY"):
        assert level(engine, "WH-SZ", sku).reserved == 0, sku


async def test_fixed_rule_ignores_stock_pressure(skipping: Env) -> None:
    env, settings, engine = skipping
    InventoryService(engine).set_on_hand("WH-SZ", "SCARCE-1", 2, safety_stock=5)
    handle = await start_order(env.client, settings, order([("SCARCE-1", 1, "10.00")]))
    view = await handle.query(OrderWorkflow.view)
    assert view.hold_why == "the shop's standard payment hold"
    assert view.payment_due_at == view.created_at + timedelta(days=5)


# ------------------------------------------------------------------ priority
async def test_vip_and_high_value_orders_get_a_priority_their_activities_carry(skipping: Env) -> None:
    env, settings, _ = skipping
    vip = for_customer(order([("CASE-IP15", 1, "12.50")]), "vip")
    high = order([("CASE-IP15", 2, "120.00")])
    both = for_customer(order([("CASE-IP15", 1, "1500.00")]), "vip")
    small = order([("CASE-IP15", 1, "12.50")])
    standard = order([("CASE-IP15", 1, "80.00")])
    campaign = order([("CASE-IP15", 1, "80.00")]).model_copy(update={"campaign": "Flash-Sale"})
    expected = {
        "vip": (vip, 1, ["VIP customer"]),
        "high": (high, 2, ["order value 240.00 USD"]),
        "both": (both, 1, ["order value 1500.00 USD", "VIP customer"]),
        "small": (small, 4, ["small standard order"]),
        "standard": (standard, 3, ["standard order"]),
        "campaign": (campaign, 2, ["campaign Flash-Sale"]),
    }
    for name, (placed, key, why) in expected.items():
        handle = await start_order(env.client, settings, placed)
        view = await handle.execute_update(OrderWorkflow.pay, payment_for(placed, f"pay_{name}"))
        assert (view.priority, view.priority_why) == (key, why), name
        assert f"priority {key} ({', '.join(why)})" in kinds(view, "placed")[0].detail
        scheduled = [
            e.activity_task_scheduled_event_attributes
            for e in (await handle.fetch_history()).events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        names = [a.activity_type.name for a in scheduled]
        steps = [n for n in names if n != "project_order"]  # read-model writes run between steps
        assert steps[:3] == ["reserve_stock", "record_payment", "lock_stock"], name
        assert {a.activity_type.name: a.priority.priority_key for a in scheduled} == dict.fromkeys(
            names, key
        ), name
    assert Decimal("240.00") == high.total


async def scheduled_priorities(env: WorkflowEnvironment, handle: Handle) -> dict[str, set[int]]:
    await settled(env.client, handle.id)
    found: dict[str, set[int]] = {}
    for event in (await handle.fetch_history()).events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            found.setdefault(scheduled.activity_type.name, set()).add(scheduled.priority.priority_key)
    return found


async def test_every_activity_of_a_vip_order_runs_with_its_priority_mails_included(skipping: Env) -> None:
    env, settings, _ = skipping
    placed = for_customer(order([("CASE-IP15", 1, "12.50")]), "vip")
    handle = await start_order(env.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed, "pay_vip"))
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
    await handle.result()
    found = await scheduled_priorities(env, handle)
    assert {"reserve_stock", "lock_stock", "release_stock", "record_refund"} <= set(found)
    assert found["notify_customer"] == {1}
    assert found == {name: {1} for name in found}
