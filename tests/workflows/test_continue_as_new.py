"""Orders can live for months: past a history threshold the workflow continues as new, carrying its
whole state, and behaves exactly as if it had not (real time-skipping server, low threshold)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.filter.v1 import WorkflowExecutionFilter
from temporalio.api.workflowservice.v1 import ListClosedWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import ConfirmShipment, OrderStatus, OrderView, StartOrder, TrackingUpdate
from domain.operator import Action, ActionParams, OperatorAction
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from tests.support.factories import STARTED, order, payment_for, settle_and_terminate
from tests.support.temporal import make_settings, running_worker
from tests.workflows.test_inventory_flow import stock
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[WorkflowEnvironment, Settings, Engine]
HISTORY_LIMIT = 40  # events; the product default is 10,000


@pytest.fixture
async def env(time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    stock(sqlite_engine, "WH-SZ", {"CASE-IP15": 10, "USB-C-1M": 10})
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


async def continued_runs(client: Client, workflow_id: str) -> int:
    """How many runs of the order ended by continuing as new."""
    closed = await client.workflow_service.list_closed_workflow_executions(
        ListClosedWorkflowExecutionsRequest(
            namespace=client.namespace,
            maximum_page_size=100,
            execution_filter=WorkflowExecutionFilter(workflow_id=workflow_id),
        )
    )
    return sum(
        1
        for execution in closed.executions
        if execution.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
    )


def act(kind: Action, reason: str, **params: object) -> OperatorAction:
    return OperatorAction(action=kind, actor="lena@ops", reason=reason, params=ActionParams(**params))


async def test_an_order_continues_as_new_twice_and_lives_on_unchanged(env: Env) -> None:
    time_env, settings, engine = env
    client = time_env.client
    placed = order()
    policy = settings.order_policy().model_copy(update={"history_limit": HISTORY_LIMIT})
    handle: Handle = await client.start_workflow(
        OrderWorkflow.run,
        StartOrder(order_id="ord_longlived01", order=placed, policy=policy),
        id="order-ord_longlived01",
        task_queue=settings.task_queue,
    )
    STARTED.append(handle)
    await handle.execute_update(OrderWorkflow.placed)
    before = await handle.query(OrderWorkflow.view)

    # a day and a half unpaid: two reminders, a hold, notes; each step grows the history
    await time_env.sleep(timedelta(hours=25))
    await handle.execute_update(OrderWorkflow.operate, act(Action.HOLD, "buyer asked to wait"))
    for number in range(3):
        await handle.execute_update(
            OrderWorkflow.operate, act(Action.NOTE, "phone call", text=f"call {number}")
        )
    await time_env.sleep(timedelta(days=10))  # held: no deadline fires, however long
    held = await handle.query(OrderWorkflow.view)
    assert (held.status, held.on_hold, held.reminders_sent) == (OrderStatus.PENDING_PAYMENT, True, 2)
    released = await handle.execute_update(OrderWorkflow.operate, act(Action.RELEASE, "buyer is back"))
    # the payment deadline moved by the time held (capped at 7 days after placement, as always)
    assert released.payment_due_at is not None
    assert released.payment_due_at > before.payment_due_at  # type: ignore[operator]

    paid = await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    assert (paid.status, paid.warehouse) == (OrderStatus.STOCK_LOCKED, "WH-SZ")
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-LONG-1", warehouse="WH-SZ")
    )
    delivered = await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="delivered", at=paid.updated_at + timedelta(days=2))
    )
    assert delivered.status == OrderStatus.DELIVERED
    await time_env.sleep(timedelta(days=8))  # the confirmation window ends: auto-complete
    result = await handle.result()

    assert await continued_runs(client, handle.id) >= 2
    assert result.status == OrderStatus.COMPLETED
    # one continuous timeline: nothing lost, nothing twice
    timeline = [e.kind for e in result.timeline]
    assert timeline[:3] == ["placed", "stock_reserved", "payment_due"]
    assert timeline.count("payment_reminder") == 2
    assert timeline.count("operator_note") == 3
    assert timeline[-3:] == ["shipped", "delivered", "completed"]
    assert len({(e.at, e.kind, e.detail) for e in result.timeline}) == len(result.timeline)
    assert result.created_at == before.created_at
    assert result.payment is not None
    assert result.payment.payment_id == "pay_1"
    # every mail once, the stock shipped once
    outbox = NotificationOutbox(engine)
    kinds = sorted(n.kind for n in outbox.for_order("ord_longlived01"))
    assert kinds == ["order_shipped", "payment_reminder_1", "payment_reminder_2"]
    inventory = InventoryService(engine)
    assert inventory.held_by("ord_longlived01") == {"lock": 0, "reserve": 0}
    assert inventory.ledger_problems() == []
    level = inventory.get("WH-SZ", "CASE-IP15")
    assert level is not None
    assert level.on_hand == 8
