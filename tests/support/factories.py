"""Builders for test orders and a bounded wait for background work (never a timing assertion)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar, overload

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from core.config import Settings
from domain.models import (
    Address,
    Channel,
    ConfirmPayment,
    Customer,
    OrderLine,
    OrderView,
    PlaceOrder,
    StartOrder,
)
from domain.policy import OrderPolicy
from workflows.order import OrderWorkflow

T = TypeVar("T")

# Every workflow a test starts; fixtures terminate the ones still open, because an open workflow
# whose worker is gone holds the time-skipping server's clock and stalls later tests.
STARTED: list[WorkflowHandle[Any, Any]] = []


async def terminate_started() -> None:
    while STARTED:
        handle = STARTED.pop()
        with contextlib.suppress(RPCError):
            await handle.terminate("test finished")


async def settled(client: Client, workflow_id: str) -> None:
    """Wait until nothing is in flight for the order (no activity, no workflow task)."""
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )
    for _ in range(200):
        # raw: the typed describe() cannot read the time-skipping server's datetime search attributes
        described = await client.workflow_service.describe_workflow_execution(request)
        if not described.pending_activities and not described.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never settled")


async def settle_and_terminate(client: Client) -> None:
    """Terminate the orders a test left open once their in-flight work finished: an order terminated
    while its activity or workflow task was in flight left the time-skipping server unable to skip
    time (the next test's env.sleep hung, then failed with "h2 protocol error")."""
    try:
        for handle in STARTED:
            await settled(client, handle.id)
    finally:
        await terminate_started()


def order(
    lines: list[tuple[str, int, str]] | None = None,
    *,
    currency: str = "USD",
    channel: Channel = Channel.SHOPIFY,
    channel_order_id: str | None = None,
    language: str = "en",
) -> PlaceOrder:
    lines = lines or [("CASE-IP15", 2, "12.50"), ("USB-C-1M", 1, "4.90")]
    return PlaceOrder(
        channel=channel,
        channel_order_id=channel_order_id or f"#{uuid.uuid4().hex[:10]}",
        customer=Customer(name="Ana Souza", email="ana@example.com", language=language),
        shipping_address=Address(country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"),
        lines=[OrderLine(sku=s, quantity=q, unit_price=Decimal(p)) for s, q, p in lines],
        currency=currency,
    )


def payment_for(placed: PlaceOrder, payment_id: str = "pay_1") -> ConfirmPayment:
    return ConfirmPayment(payment_id=payment_id, amount=placed.total, currency=placed.currency, method="card")


def policy_of(settings: Settings) -> OrderPolicy:
    return settings.order_policy()


async def start_order(
    client: Client, settings: Settings, placed: PlaceOrder
) -> WorkflowHandle[OrderWorkflow, OrderView]:
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    handle = await client.start_workflow(
        OrderWorkflow.run,
        StartOrder(order_id=order_id, order=placed, policy=policy_of(settings)),
        id=f"order-{order_id}",
        task_queue=settings.task_queue,
    )
    STARTED.append(handle)
    await handle.execute_update(OrderWorkflow.placed)  # stock reserved, payment deadline set
    return handle


@overload
async def eventually(probe: Callable[[], Awaitable[T]], *, tries: int = 200) -> T: ...
@overload
async def eventually(probe: Callable[[], T], *, tries: int = 200) -> T: ...
async def eventually(probe: Callable[[], Any], *, tries: int = 200) -> Any:
    """Poll until probe() returns something truthy: for work that finishes in the background."""
    result: Any = None
    for _ in range(tries):
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met, last value {result!r}")
