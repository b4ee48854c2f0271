"""No failure fails or hangs an order: each step failing for good and failing for a while, on the
real time-skipping server, against SQLite and PostgreSQL that really refuse the writes
(tests/support/faults.py).

For good: the order goes to exception with the reason and what to do, and an operator's retry
finishes the job. For a while: commands are answered at once as pending, the order shows what it
waits on, and it carries on by itself when the database takes writes again. Afterwards every stock
row agrees with the ledger and no closed or shipped order holds stock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import CancelOrder, ConfirmShipment, OrderStatus, OrderView, RestockCheck
from domain.operator import Action, ActionParams, OperatorAction
from services.inventory import InventoryService
from services.orders import OrderStore
from services.payments import PaymentService
from tests.support.factories import eventually, order, payment_for, settle_and_terminate, start_order
from tests.support.faults import refuse_writes, refusing_writes, restore
from tests.support.temporal import make_settings, running_worker
from tests.workflows.test_inventory_flow import stock
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[WorkflowEnvironment, Settings, Engine]
OPERATOR = "lena@ops"


@pytest.fixture
async def env(time_skipping_env: WorkflowEnvironment, engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    stock(engine, "WH-SZ", {"CASE-IP15": 10, "USB-C-1M": 10})
    async with running_worker(time_skipping_env.client, settings, engine):
        yield time_skipping_env, settings, engine
        await settle_and_terminate(time_skipping_env.client)


def act(kind: Action, reason: str = "checked with the buyer", **params: Any) -> OperatorAction:
    return OperatorAction(action=kind, actor=OPERATOR, reason=reason, params=ActionParams(**params))


async def refused(handle: Handle, update: Any, arg: Any = None) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await (handle.execute_update(update, arg) if arg is not None else handle.execute_update(update))
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


async def running(client: Client, handle: Handle) -> bool:
    """Still open (not failed, not closed); read raw, as the test server cannot decode every attribute."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    return (
        described.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    )


def kinds(view: OrderView) -> list[str]:
    return [e.kind for e in view.timeline]


def stock_is_consistent(engine: Engine) -> None:
    assert InventoryService(engine).ledger_problems() == []


# ------------------------------------------------------------------ the read model
@pytest.mark.parametrize("permanent", [True, False], ids=["for-good", "for-a-while"])
async def test_a_read_model_that_refuses_writes_never_stops_the_order(env: Env, permanent: bool) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    store = OrderStore(engine)
    order_id = (await handle.query(OrderWorkflow.view)).order_id
    await eventually(lambda: store.get(order_id))  # the placement's write is done before writes fail
    with refusing_writes(engine, "orders", permanent=permanent):
        paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
        # the order went on: paid, stock locked, shipment requested; only the read model lags
        assert paid.status == OrderStatus.STOCK_LOCKED
        assert kinds(paid)[-2:] == ["stock_locked", "shipment_requested"]
        if permanent or engine.dialect.name == "postgresql":  # (SQLite's outage hides the table)
            row = store.get(order_id)
            assert row is not None
            assert row.status == OrderStatus.PENDING_PAYMENT
            # the lag shows where operators look: the stuck list (at the order's own time)
            # (the failed write is marked as soon as the projection after the command gave up)
            stuck = await eventually(lambda: store.stuck(paid.updated_at + timedelta(seconds=1)))
            assert [s.order.order_id for s in stuck] == [order_id]
            assert stuck[0].reasons[-1].startswith("read model behind since")
            assert "refuses writes" in stuck[0].reasons[-1]
            assert [lag.order_id for lag in store.lagging()] == [order_id]
        assert await running(time_env.client, handle)
    # nothing else happens to the order, yet its catch-up timer writes the read model
    await time_env.sleep(timedelta(minutes=5))  # catch-up tries: 1 min doubling to 1 h
    caught_up = await eventually(lambda: store.get(order_id))
    assert caught_up is not None
    assert caught_up.status == OrderStatus.STOCK_LOCKED
    assert caught_up.timeline == (await handle.query(OrderWorkflow.view)).timeline
    assert store.lagging() == []
    cancelled = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
    assert cancelled.status == OrderStatus.CANCELLED
    assert InventoryService(engine).held_by(order_id) == {"lock": 0, "reserve": 0}
    stock_is_consistent(engine)


# ------------------------------------------------------------------ the refund
async def test_a_refund_that_cannot_be_written_puts_the_cancel_in_exception_and_retry_finishes_it(
    env: Env,
) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    with refusing_writes(engine, "refunds", permanent=True):
        reason = await refused(handle, OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
        assert reason.startswith("record refund failed: the database refused the data")
        assert reason.endswith("the order is in exception for an operator")
        view = await handle.query(OrderWorkflow.view)
        assert (view.status, view.exception_reason) == (OrderStatus.EXCEPTION, "cancel_failed")
        assert view.suggested_actions[0].startswith("retry: finishes the cancellation")
        assert "cancelling (buyer changed mind) stopped at record refund" in view.timeline[-1].detail
        # half-cancelled: the stock is back, nothing is left to fire, an operator sees it
        assert InventoryService(engine).held_by(paid.order_id) == {"lock": 0, "reserve": 0}
        assert view.payment_due_at is None
        assert view.ship_by is not None
        # (the test server's clock runs ahead of this machine's: ask at the order's own time)
        stuck = await eventually(lambda: OrderStore(engine).stuck(view.updated_at + timedelta(seconds=1)))
        assert [(s.order.order_id, s.reasons) for s in stuck] == [
            (paid.order_id, ["exception: cancel_failed"])
        ]
        # other commands are still answered at once
        noted = await handle.execute_update(
            OrderWorkflow.operate, act(Action.NOTE, text="refund table being repaired")
        )
        assert noted.timeline[-1].kind == "operator_note"
        assert await running(time_env.client, handle)
    retried = await handle.execute_update(OrderWorkflow.operate, act(Action.RETRY, "refund table repaired"))
    assert retried.status == OrderStatus.CANCELLED
    assert retried.cancel_reason == "buyer changed mind"
    assert kinds(retried)[-3:] == ["refund_recorded", "cancelled", "operator_retry"]
    refunds = PaymentService(engine).refunds_for(paid.order_id)
    assert [(r.amount, r.reason) for r in refunds] == [(placed.total, "buyer changed mind")]
    stock_is_consistent(engine)


async def test_a_refund_write_failing_for_a_while_answers_at_once_and_cancels_when_it_recovers(
    env: Env,
) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    undo = refuse_writes(engine, "refunds", permanent=False)
    try:
        # the cancel is answered while its refund keeps failing: accepted, pending, and why
        pending = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
        assert [(p.command, p.waiting_on) for p in pending.pending] == [("cancel", "record refund")]
        assert pending.waiting_on == "record refund"
        assert pending.waiting_since is not None
        assert kinds(pending)[-1] == "step_waiting"
        # a later command is answered too, queued behind the cancel
        queued = await handle.execute_update(OrderWorkflow.operate, act(Action.NOTE, text="buyer called"))
        assert [p.command for p in queued.pending] == ["cancel", "note"]
        await time_env.sleep(timedelta(minutes=5))  # still failing: the order keeps waiting
        assert (await handle.query(OrderWorkflow.view)).waiting_on == "record refund"
    finally:
        restore(engine, undo)
    await time_env.sleep(timedelta(minutes=10))  # the next round goes through
    done = await handle.query(OrderWorkflow.view)
    assert done.status == OrderStatus.CANCELLED
    assert (done.pending, done.waiting_on) == ([], None)
    assert "step_recovered" in kinds(done)
    # the note queued behind the cancel found the order cancelled: refused, and the timeline says so
    assert done.timeline[-1].kind == "command_refused"
    assert done.timeline[-1].detail == "note: the order is cancelled"
    assert len(PaymentService(engine).refunds_for(paid.order_id)) == 1
    assert InventoryService(engine).held_by(paid.order_id) == {"lock": 0, "reserve": 0}
    assert (await handle.result()).status == OrderStatus.CANCELLED
    stock_is_consistent(engine)


# ------------------------------------------------------------------ the stock lock
async def test_a_lock_failing_for_good_puts_the_order_in_exception_and_retry_runs_it_again(env: Env) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    order_id = (await handle.query(OrderWorkflow.view)).order_id
    with refusing_writes(engine, "stock_allocations", permanent=True):
        failed = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (failed.status, failed.exception_reason) == (OrderStatus.EXCEPTION, "lock_stock_failed")
    assert kinds(failed)[-2:] == ["paid", "step_failed"]
    assert "allocate and lock stock failed: the database refused the data" in failed.timeline[-1].detail
    assert failed.suggested_actions[0].startswith("retry:")
    # the reservation made at placement still holds the units
    assert InventoryService(engine).held_by(order_id) == {"lock": 0, "reserve": 3}
    retried = await handle.execute_update(OrderWorkflow.operate, act(Action.RETRY, "fixed"))
    assert (retried.status, retried.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    assert InventoryService(engine).held_by(order_id) == {"lock": 3, "reserve": 0}
    stock_is_consistent(engine)


async def test_a_lock_failing_for_a_while_waits_and_goes_on_by_itself(env: Env) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    undo = refuse_writes(engine, "stock_allocations", permanent=False)
    try:
        paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
        assert (paid.status, paid.waiting_on) == (OrderStatus.PAID, "allocate and lock stock")
        # an operator's cancel does not wait behind an automatic step: it goes first
        await time_env.sleep(timedelta(minutes=3))
        assert (await handle.query(OrderWorkflow.view)).status == OrderStatus.PAID
    finally:
        restore(engine, undo)
    await time_env.sleep(timedelta(minutes=5))
    locked = await handle.query(OrderWorkflow.view)
    assert (locked.status, locked.waiting_on) == (OrderStatus.STOCK_LOCKED, None)
    assert kinds(locked)[-3:] == ["step_recovered", "stock_locked", "shipment_requested"]
    stock_is_consistent(engine)


async def test_a_cancel_goes_before_an_automatic_step_that_keeps_failing(env: Env) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    undo = refuse_writes(engine, "stock_allocations", permanent=False)
    try:
        paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
        assert paid.waiting_on == "allocate and lock stock"
        cancelled = await handle.execute_update(
            OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind")
        )
        assert cancelled.status == OrderStatus.CANCELLED
        assert cancelled.waiting_on is None
    finally:
        restore(engine, undo)
    assert InventoryService(engine).held_by(paid.order_id) == {"lock": 0, "reserve": 0}
    stock_is_consistent(engine)


async def test_a_restock_check_whose_lock_fails_for_good_keeps_the_order_waiting(env: Env) -> None:
    time_env, settings, engine = env
    placed = order([("CASE-IP15", 50, "12.50")])
    handle = await start_order(time_env.client, settings, placed)
    short = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (short.exception_reason, short.waiting_for_restock) == ("out_of_stock", True)
    stock(engine, "WH-SZ", {"CASE-IP15": 60})
    with refusing_writes(engine, "stock_allocations", permanent=True):
        await time_env.sleep(timedelta(minutes=31))  # the timer's check fails
        after_timer = await handle.query(OrderWorkflow.view)
        assert kinds(after_timer)[-1] == "restock_check_failed"
        # and so does the check the restock dispatcher asks for: answered, still waiting
        nudged = await handle.execute_update(OrderWorkflow.restock, RestockCheck())
        assert (nudged.status, nudged.waiting_for_restock) == (OrderStatus.EXCEPTION, True)
        assert kinds(nudged)[-1] == "restock_check_failed"
        assert await running(time_env.client, handle)
    locked = await handle.execute_update(OrderWorkflow.restock, RestockCheck())
    assert (locked.status, locked.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    stock_is_consistent(engine)


async def test_reassign_whose_lock_fails_for_good_is_refused_and_changes_nothing(env: Env) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert paid.warehouse == "WH-SZ"
    stock(engine, "WH-DE", {"CASE-IP15": 5, "USB-C-1M": 5})
    with refusing_writes(engine, "stock_allocations", permanent=True):
        reason = await refused(
            handle, OrderWorkflow.operate, act(Action.REASSIGN_WAREHOUSE, warehouse="WH-DE")
        )
    assert reason.startswith("lock stock in WH-DE failed: the database refused the data")
    assert reason.endswith("stock stays where it was")
    unchanged = await handle.query(OrderWorkflow.view)
    assert (unchanged.status, unchanged.warehouse, unchanged.timeline) == (
        OrderStatus.STOCK_LOCKED,
        "WH-SZ",
        paid.timeline,
    )
    moved = await handle.execute_update(
        OrderWorkflow.operate, act(Action.REASSIGN_WAREHOUSE, warehouse="WH-DE")
    )
    assert moved.warehouse == "WH-DE"
    stock_is_consistent(engine)


# ------------------------------------------------------------------ mark-shipped holds nothing back
@pytest.mark.parametrize(
    "state", ["held_paid", "out_of_stock", "lock_stock_failed", "stock_locked", "partially_shipped"]
)
async def test_mark_shipped_leaves_no_stock_held_from_any_state_that_holds_stock(
    env: Env, state: str
) -> None:
    time_env, settings, engine = env
    inventory = InventoryService(engine)
    lines = [("CASE-IP15", 2, "12.50"), ("USB-C-1M", 1, "4.90")]
    if state == "out_of_stock":
        lines = [("CASE-IP15", 2, "12.50"), ("USB-C-1M", 11, "4.90")]
    if state == "partially_shipped":
        stock(engine, "WH-B", {"LAMP-1": 5})
        lines = [("CASE-IP15", 2, "12.50"), ("LAMP-1", 1, "30.00")]
    placed = order(lines)
    handle = await start_order(time_env.client, settings, placed)
    order_id = (await handle.query(OrderWorkflow.view)).order_id
    if state == "held_paid":
        await handle.execute_update(OrderWorkflow.operate, act(Action.HOLD, "address check"))
    if state == "lock_stock_failed":
        with refusing_writes(engine, "stock_allocations", permanent=True):
            await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    else:
        await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    if state == "partially_shipped":
        await handle.execute_update(
            OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-0001", warehouse="WH-B")
        )
    before = await handle.query(OrderWorkflow.view)
    expected_status = {
        "held_paid": OrderStatus.PAID,
        "out_of_stock": OrderStatus.EXCEPTION,
        "lock_stock_failed": OrderStatus.EXCEPTION,
        "stock_locked": OrderStatus.STOCK_LOCKED,
        "partially_shipped": OrderStatus.PARTIALLY_SHIPPED,
    }[state]
    assert before.status == expected_status
    held = inventory.held_by(order_id)
    assert held["lock"] + held["reserve"] > 0 or state == "out_of_stock"

    shipped = await handle.execute_update(
        OrderWorkflow.operate,
        act(Action.MARK_SHIPPED, "left from the shop floor", carrier="UPS", tracking_number="1Z999"),
    )
    assert shipped.status == OrderStatus.SHIPPED
    assert inventory.held_by(order_id) == {"lock": 0, "reserve": 0}
    stock_is_consistent(engine)
    on_hand = inventory.get("WH-SZ", "CASE-IP15")
    assert on_hand is not None
    # locked stock left the warehouse with the parcel; reserved stock went back to sale
    assert on_hand.on_hand == (8 if state in ("stock_locked", "partially_shipped") else 10)
