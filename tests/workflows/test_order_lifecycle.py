"""The order lifecycle on the real time-skipping Temporal server: reminders, auto-cancel, happy path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import (
    CancelOrder,
    ConfirmPayment,
    ConfirmReceipt,
    ConfirmShipment,
    OrderStatus,
    OrderView,
    TrackingUpdate,
)
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from services.payments import PaymentService
from services.shipments import ShipmentService
from services.tables import Payment, StockMove
from tests.support.factories import eventually, order, payment_for, settle_and_terminate, start_order
from tests.support.temporal import make_settings, running_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]


@pytest.fixture
async def env(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings, Engine]]:
    settings = make_settings()
    InventoryService(sqlite_engine).set_on_hand("WH-SZ", "CASE-IP15", 10)
    InventoryService(sqlite_engine).set_on_hand("WH-SZ", "USB-C-1M", 10)
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


def kinds(view: OrderView, kind: str) -> list[Any]:
    return [event for event in view.timeline if event.kind == kind]


async def refused(handle: Handle, update: Any, arg: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(update, arg)
    assert failure.value.cause is not None
    return str(failure.value.cause.message)  # type: ignore[attr-defined]


async def test_unpaid_order_gets_three_reminders_then_is_cancelled_on_the_hold_day(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, engine = env
    handle = await start_order(tenv.client, settings, order())
    created = (await handle.query(OrderWorkflow.view)).created_at

    await tenv.sleep(timedelta(minutes=59))
    assert (await handle.query(OrderWorkflow.view)).reminders_sent == 0
    await tenv.sleep(timedelta(minutes=2))
    assert (await handle.query(OrderWorkflow.view)).reminders_sent == 1

    await tenv.sleep(timedelta(days=6))
    final = await handle.result()
    reminders = kinds(final, "payment_reminder")
    offsets = [event.at - created for event in reminders]
    assert len(reminders) == 3
    for offset, expected in zip(offsets, (1, 24, 72), strict=True):
        assert timedelta(hours=expected) <= offset < timedelta(hours=expected, seconds=5)
    assert [e.detail.split(":")[0] for e in reminders] == [
        "reminder 1 of 3 (1 h)",
        "reminder 2 of 3 (24 h)",
        "reminder 3 of 3 (72 h)",
    ]
    assert final.status == OrderStatus.CANCELLED
    assert final.cancel_reason == "payment_timeout"
    cancelled_after = kinds(final, "cancelled")[0].at - created
    assert timedelta(days=5) <= cancelled_after < timedelta(days=5, seconds=5)

    outbox = NotificationOutbox(engine)
    sent = await eventually(lambda: len(outbox.for_order(final.order_id)) == 4)
    assert sent
    assert [n.kind for n in outbox.for_order(final.order_id)] == [
        "payment_reminder_1",
        "payment_reminder_2",
        "payment_reminder_3",
        "order_cancelled",
    ]
    stored = OrderStore(engine).get(final.order_id)
    assert stored is not None
    assert stored.status == OrderStatus.CANCELLED


async def test_hold_period_comes_from_settings(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> None:
    settings = make_settings(payment_hold="3d")
    for sku in ("CASE-IP15", "USB-C-1M"):  # known SKUs (an unknown one goes to exception instead)
        InventoryService(sqlite_engine).set_on_hand("WH-SZ", sku, 10)
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        handle = await start_order(time_skipping_env.client, settings, order())
        await time_skipping_env.sleep(timedelta(days=2, hours=23))
        assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.PENDING_PAYMENT
        final = await handle.result()
        await settle_and_terminate(time_skipping_env.client)
    assert final.status == OrderStatus.CANCELLED
    assert final.created_at + timedelta(days=3) <= kinds(final, "cancelled")[0].at
    # the 72 h reminder would fall on the cancel instant: a last call for a dead order is not sent
    assert final.reminders_sent == 2


def test_hold_outside_three_to_seven_days_is_refused_at_start_up() -> None:
    for bad in ("2d", "8d", "PT12H"):
        with pytest.raises(ValueError, match="between 3 and 7 days"):
            Settings(payment_hold=bad)


async def test_payment_stops_every_later_reminder_and_locks_stock(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, engine = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    await tenv.sleep(timedelta(hours=2))
    view = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert view.status == OrderStatus.STOCK_LOCKED
    assert view.warehouse == "WH-SZ"
    await tenv.sleep(timedelta(days=8))
    view = await handle.query(OrderWorkflow.view)
    assert view.reminders_sent == 1
    assert view.status == OrderStatus.STOCK_LOCKED
    assert not kinds(view, "cancelled")
    level = InventoryService(engine).get("WH-SZ", "CASE-IP15")
    assert level is not None
    assert (level.locked, level.available) == (2, 8)


async def test_happy_path_reaches_completed(env: tuple[WorkflowEnvironment, Settings, Engine]) -> None:
    tenv, settings, engine = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    view = await handle.execute_update(
        OrderWorkflow.ship,
        ConfirmShipment(carrier="DHL", tracking_number="JD0146000012345", warehouse="WH-SZ"),
    )
    assert view.status == OrderStatus.SHIPPED
    at = view.updated_at
    view = await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="in_transit", at=at, detail="picked up")
    )
    assert view.status == OrderStatus.IN_TRANSIT
    view = await handle.execute_update(OrderWorkflow.track, TrackingUpdate(status="delivered", at=at))
    assert view.status == OrderStatus.DELIVERED
    assert view.confirm_by == kinds(view, "delivered")[0].at + timedelta(days=7)
    view = await handle.execute_update(OrderWorkflow.confirm_receipt, ConfirmReceipt())
    assert view.status == OrderStatus.COMPLETED
    final = await handle.result()
    assert [e.kind for e in final.timeline] == [
        "placed",
        "stock_reserved",
        "payment_due",
        "paid",
        "stock_locked",
        "shipment_requested",
        "shipped",
        "in_transit",
        "delivered",
        "completed",
    ]
    level = InventoryService(engine).get("WH-SZ", "CASE-IP15")
    assert level is not None
    assert (level.on_hand, level.locked) == (8, 0)
    stored = OrderStore(engine).get(final.order_id)
    assert stored is not None
    assert stored.status == OrderStatus.COMPLETED
    assert len(stored.timeline) == len(final.timeline)


async def test_delivered_order_completes_itself_after_the_confirm_window(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, _ = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="UPS", tracking_number="1Z999AA1", warehouse="WH-SZ")
    )
    view = await handle.query(OrderWorkflow.view)
    await handle.execute_update(OrderWorkflow.track, TrackingUpdate(status="delivered", at=view.updated_at))
    await tenv.sleep(timedelta(days=6, hours=23))
    assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.DELIVERED
    final = await handle.result()
    assert final.status == OrderStatus.COMPLETED
    assert "confirmation window" in kinds(final, "completed")[0].detail


async def test_cancel_before_shipment_releases_stock_and_records_refund(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, engine = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    view = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
    assert view.status == OrderStatus.CANCELLED
    assert [e.kind for e in view.timeline][-4:] == [
        "stock_released",
        "shipment_request_withdrawn",
        "refund_recorded",
        "cancelled",
    ]
    assert [r.status for r in ShipmentService(engine).for_order(view.order_id)] == ["cancelled"]
    level = InventoryService(engine).get("WH-SZ", "CASE-IP15")
    assert level is not None
    assert (level.on_hand, level.locked, level.available) == (10, 0, 10)
    refunds = PaymentService(engine).refunds_for(view.order_id)
    assert [(r.amount, r.currency) for r in refunds] == [(placed.total, "USD")]
    await handle.result()


async def test_cancel_after_shipment_is_refused_and_changes_nothing(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, _ = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="JD01460000", warehouse="WH-SZ")
    )
    before = await handle.query(OrderWorkflow.view)
    reason = await refused(handle, OrderWorkflow.cancel, CancelOrder(reason="too late"))
    assert "already shipped" in reason
    assert "return" in reason
    after = await handle.query(OrderWorkflow.view)
    assert after == before


async def test_duplicate_payment_is_recorded_once_and_wrong_amount_is_refused(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, engine = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    short = ConfirmPayment(payment_id="pay_x", amount=placed.total - 1, currency="USD", method="card")
    reason = await refused(handle, OrderWorkflow.pay, short)
    assert "does not match the order total" in reason
    wrong_currency = ConfirmPayment(payment_id="pay_y", amount=placed.total, currency="EUR", method="card")
    assert "does not match" in await refused(handle, OrderWorkflow.pay, wrong_currency)
    assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.PENDING_PAYMENT

    first = await handle.execute_update(OrderWorkflow.pay, payment_for(placed, "pay_1"))
    again = await handle.execute_update(OrderWorkflow.pay, payment_for(placed, "pay_1"))
    assert again == first
    assert "already paid" in await refused(handle, OrderWorkflow.pay, payment_for(placed, "pay_2"))
    with Session(engine) as session:
        assert len(session.exec(select(Payment).where(Payment.order_id == first.order_id)).all()) == 1
        locks = session.exec(select(StockMove).where(StockMove.order_id == first.order_id)).all()
    assert sorted((m.sku, m.kind, m.quantity) for m in locks) == [
        ("CASE-IP15", "lock", 2),
        ("CASE-IP15", "lock_from_reserve", 2),
        ("CASE-IP15", "reserve", 2),
        ("USB-C-1M", "lock", 1),
        ("USB-C-1M", "lock_from_reserve", 1),
        ("USB-C-1M", "reserve", 1),
    ], "reserved at placement, turned into a lock on payment, once"


async def test_not_enough_stock_puts_order_in_exception_with_nothing_locked(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, engine = env
    placed = order([("CASE-IP15", 3, "12.50"), ("USB-C-1M", 11, "4.90")])
    handle = await start_order(tenv.client, settings, placed)
    view = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert view.status == OrderStatus.EXCEPTION
    assert view.exception_reason == "out_of_stock"
    assert "USB-C-1M 10/11" in kinds(view, "out_of_stock")[0].detail
    inventory = InventoryService(engine)
    for sku in ("CASE-IP15", "USB-C-1M"):
        level = inventory.get("WH-SZ", sku)
        assert level is not None
        assert level.locked == 0
    with Session(engine) as session:
        assert not session.exec(select(StockMove).where(StockMove.order_id == view.order_id)).all()
    assert "resolve it first" in await refused(
        handle,
        OrderWorkflow.ship,
        ConfirmShipment(carrier="DHL", tracking_number="JD01460000", warehouse="WH-SZ"),
    )
    cancelled = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="no stock"))
    assert cancelled.status == OrderStatus.CANCELLED
    assert kinds(cancelled, "refund_recorded")
    await handle.result()


async def test_missed_ship_by_is_recorded_and_the_order_keeps_waiting(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, _ = env
    placed = order()
    handle = await start_order(tenv.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.ship_by == kinds(paid, "paid")[0].at + timedelta(hours=48)
    await tenv.sleep(timedelta(hours=47))
    assert not kinds(await handle.query(OrderWorkflow.view), "ship_deadline_missed")
    await tenv.sleep(timedelta(hours=2))
    view = await handle.query(OrderWorkflow.view)
    assert len(kinds(view, "ship_deadline_missed")) == 1
    assert view.ship_late
    assert view.status == OrderStatus.STOCK_LOCKED
    shipped = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="JD01460000", warehouse="WH-SZ")
    )
    assert shipped.status == OrderStatus.SHIPPED
    assert shipped.ship_late


async def test_commands_out_of_order_are_refused_with_a_reason(
    env: tuple[WorkflowEnvironment, Settings, Engine],
) -> None:
    tenv, settings, _ = env
    handle = await start_order(tenv.client, settings, order())
    ship = ConfirmShipment(carrier="DHL", tracking_number="JD01460000", warehouse="WH-SZ")
    assert await refused(handle, OrderWorkflow.ship, ship) == "the order is not paid yet"
    assert "not been delivered" in await refused(handle, OrderWorkflow.confirm_receipt, ConfirmReceipt())
    view = await handle.query(OrderWorkflow.view)
    tracking = TrackingUpdate(status="delivered", at=view.created_at)
    assert "not paid" in await refused(handle, OrderWorkflow.track, tracking)
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="test over"))
    await handle.result()
