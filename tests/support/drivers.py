"""Drive orders the way the channel, the warehouse and the carrier would, through whatever breaks.

Every call is retried until it gets an answer, with a stable update id so a resend is deduplicated
by Temporal; the checks afterwards (tests/support/checks.py) read Temporal, the order views, the
mails received and the database.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from domain.models import (
    CancelOrder,
    ConfirmReceipt,
    ConfirmShipment,
    OrderStatus,
    OrderView,
    StartOrder,
    TrackingUpdate,
)
from domain.operator import Action, OperatorAction
from services.tables import ShipmentRequest
from tests.support.plans import PAYS, SHIPS, WAREHOUSE, Plan, Scenario
from tests.support.stack import Stack
from workflows.order import OrderWorkflow

T = TypeVar("T")
Handle = WorkflowHandle[OrderWorkflow, OrderView]


TRANSIENT = (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, WorkflowQueryFailedError, TimeoutError)


async def persist(call: Callable[[], Awaitable[T]]) -> T:
    """Call until the call gets an answer, like a webhook sender retrying a request that timed out.
    A refusal (WorkflowUpdateFailedError) is an answer and is raised."""
    while True:
        try:
            return await asyncio.wait_for(call(), timeout=20)
        except TRANSIENT:
            await asyncio.sleep(0.5)


class ShipmentRequests:
    """The warehouse side: one poller reads pending shipment requests, each order waits for its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def wait(self, order_id: str) -> None:
        await self._seen[order_id].wait()

    async def poll(self) -> None:
        while True:
            with suppress(Exception):  # the warehouse keeps polling through database hiccups
                for order_id in await asyncio.to_thread(self._requested):
                    self._seen[order_id].set()
            await asyncio.sleep(0.25)

    def _requested(self) -> list[str]:
        with Session(self._engine) as session:
            query = select(ShipmentRequest.order_id).where(ShipmentRequest.status == "requested")
            return list(session.exec(query).all())


def status_in(*statuses: OrderStatus) -> Callable[[OrderView], bool]:
    return lambda view: view.status in statuses


AFTER_SHIP = (OrderStatus.SHIPPED, OrderStatus.IN_TRANSIT, OrderStatus.DELIVERED, OrderStatus.COMPLETED)


async def update(handle: Handle, name: str, method: Any, arg: Any, done: Callable[[OrderView], bool]) -> None:
    """Send an update with a stable id (a resend after a lost answer is deduplicated by Temporal);
    a refusal is fine only when the order already is where this step leads."""
    try:
        await persist(lambda: handle.execute_update(method, arg, id=name))
    except WorkflowUpdateFailedError:
        view = await persist(lambda: handle.query(OrderWorkflow.view))
        if not done(view):
            raise


async def drive(client: Client, plan: Plan, task_queue: str, warehouse: ShipmentRequests) -> OrderView:
    """One order from placement to its end, as its scenario says; returns the workflow's result."""
    await asyncio.sleep(plan.start_after)
    think = iter(plan.think)
    handle: Handle = await persist(
        lambda: client.start_workflow(
            OrderWorkflow.run,
            StartOrder(order_id=plan.order_id, order=plan.placed, policy=plan.policy),
            id=plan.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    )
    await persist(lambda: handle.execute_update(OrderWorkflow.placed, id="placed"))
    await asyncio.sleep(next(think))
    scenario = plan.scenario
    if scenario in PAYS:
        paid = status_in(*(s for s in OrderStatus if s != OrderStatus.PENDING_PAYMENT))
        await update(handle, "pay", OrderWorkflow.pay, plan.payment, paid)
        await warehouse.wait(plan.order_id)
        await asyncio.sleep(next(think))
    if scenario in SHIPS:
        tracking_number = f"TRK-{plan.tag}-{plan.number:03d}"
        shipment = ConfirmShipment(carrier="DHL", tracking_number=tracking_number, warehouse=WAREHOUSE)
        await update(handle, "ship", OrderWorkflow.ship, shipment, status_in(*AFTER_SHIP))
        await asyncio.sleep(next(think))
        if scenario == Scenario.COMPLETE:
            moving = TrackingUpdate(status="in_transit", at=datetime.now(UTC), detail="departed hub")
            await update(handle, "in_transit", OrderWorkflow.track, moving, status_in(*AFTER_SHIP[1:]))
            await asyncio.sleep(next(think))
        arrived = TrackingUpdate(status="delivered", at=datetime.now(UTC))
        delivered = status_in(OrderStatus.DELIVERED, OrderStatus.COMPLETED)
        await update(handle, "delivered", OrderWorkflow.track, arrived, delivered)
        if scenario == Scenario.COMPLETE:
            await asyncio.sleep(next(think))
            completed = status_in(OrderStatus.COMPLETED)
            await update(handle, "confirm", OrderWorkflow.confirm_receipt, ConfirmReceipt(), completed)
    cancelled = status_in(OrderStatus.CANCELLED)
    if scenario in (Scenario.CANCEL_UNPAID, Scenario.CANCEL_PAID):
        request = CancelOrder(reason="the buyer cancelled on the channel")
        await update(handle, "cancel", OrderWorkflow.cancel, request, cancelled)
    if scenario in (Scenario.OPERATOR_CANCEL_UNPAID, Scenario.OPERATOR_CANCEL_PAID):
        action = OperatorAction(action=Action.CANCEL, actor="ops@reliability", reason="fraud check failed")
        await update(handle, "operator_cancel", OrderWorkflow.operate, action, cancelled)
    return await persist(handle.result)


@dataclass
class Run:
    results: list[OrderView | BaseException]
    elapsed: float


async def drive_all(
    stack: Stack,
    plans: list[Plan],
    disrupt: Callable[[Callable[[], int]], Coroutine[Any, Any, None]],
    within: float,
    describe_disruption: Callable[[], str],
) -> Run:
    """Drive every order while `disrupt(open_orders)` does its damage; fail after `within` seconds."""
    warehouse = ShipmentRequests(stack.engine)
    tasks: list[asyncio.Task[OrderView]] = []
    poller = asyncio.create_task(warehouse.poll())
    damage = asyncio.create_task(disrupt(lambda: sum(not task.done() for task in tasks)))
    started = time.monotonic()
    try:
        async with asyncio.timeout(within):
            tasks += [
                asyncio.create_task(drive(stack.client, plan, stack.task_queue, warehouse)) for plan in plans
            ]
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await damage
    except TimeoutError:
        still_open = [plan.order_id for plan, task in zip(plans, tasks, strict=True) if not task.done()]
        pytest.fail(
            f"{len(still_open)} orders still open after {within} s: {still_open[:10]}\n"
            f"{describe_disruption()}\nworker log:\n{stack.worker.tail()}\n"
            f"temporal log:\n{stack.server.tail(15)}"
        )
    finally:
        for task in [poller, damage, *tasks]:
            task.cancel()
    return Run(list(results), time.monotonic() - started)
