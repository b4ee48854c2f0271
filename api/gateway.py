"""The API's way to orders: start workflows, send them updates, query them, fall back to the read model."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, NotFound
from core.config import Settings
from domain.models import ConfirmPayment, OrderView, PlaceOrder, RestockCheck, StartOrder
from domain.operator import ACTION_COMMANDS, OperatorAction
from domain.transitions import Command, refusal
from services.orders import OrderStore
from workflows.order import OrderWorkflow


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(8)


def workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


class OrderGateway:
    def __init__(self, client: Client, store: OrderStore, settings: Settings) -> None:
        self._client = client
        self._store = store
        self._settings = settings

    def _handle(self, order_id: str) -> WorkflowHandle[OrderWorkflow, OrderView]:
        return self._client.get_workflow_handle_for(OrderWorkflow.run, workflow_id(order_id))

    async def place(self, order: PlaceOrder) -> tuple[OrderView, bool]:
        """Start the order's workflow once per (channel, channel_order_id); True when it is new."""
        order_id, created = await run_in_threadpool(
            self._store.claim_key, order.channel.value, order.channel_order_id, new_order_id()
        )
        if not created:
            existing = await self.find(order_id)
            if existing is not None:
                return existing, False
            # The key was claimed but the workflow never started (a crash in between): start it.
        start = WithStartWorkflowOperation(
            OrderWorkflow.run,
            StartOrder(order_id=order_id, order=order, policy=self._settings.order_policy()),
            id=workflow_id(order_id),
            task_queue=self._settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=(
                f"{order.channel} order {order.channel_order_id}: {order.total} "
                f"{order.currency} to {order.shipping_address.country}"
            ),
        )
        try:
            # Start and wait for placement (stock reserved, payment deadline set) in one round trip.
            view = await self._client.execute_update_with_start_workflow(
                OrderWorkflow.placed, start_workflow_operation=start
            )
        except WorkflowAlreadyStartedError:
            view = await self._handle(order_id).query(OrderWorkflow.view)  # closed, within retention
        return view, created

    async def find(self, order_id: str) -> OrderView | None:
        """Live orders from their workflow; closed or forgotten ones from the read model."""
        if not await run_in_threadpool(self._store.known, order_id):
            return None
        try:
            return await self._handle(order_id).query(OrderWorkflow.view)
        except RPCError as err:
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
        return await run_in_threadpool(self._store.get, order_id)

    async def get(self, order_id: str) -> OrderView:
        view = await self.find(order_id)
        if view is None:
            raise NotFound(f"order {order_id}")
        return view

    async def pay(self, order_id: str, payment: ConfirmPayment) -> OrderView:
        try:
            return await self.command(order_id, OrderWorkflow.pay, payment, Command.PAY)
        except Conflict:
            view = await self.get(order_id)
            if view.payment and view.payment.payment_id == payment.payment_id:
                return view  # a duplicate of the payment that paid this (now closed) order
            raise

    async def restock(self, order_id: str) -> OrderView:
        return await self.command(order_id, OrderWorkflow.restock, RestockCheck(), Command.RESTOCKED)

    async def operate(self, order_id: str, request: OperatorAction) -> OrderView:
        return await self.command(order_id, OrderWorkflow.operate, request, ACTION_COMMANDS[request.action])

    def ui_url(self, order_id: str) -> str:
        base = self._settings.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self._settings.temporal_namespace}/workflows/{workflow_id(order_id)}"

    async def command(self, order_id: str, update: Any, arg: Any, command: Command) -> OrderView:
        """Send an update; a refusal or a closed order becomes Conflict with the reason."""
        if not await run_in_threadpool(self._store.known, order_id):
            raise NotFound(f"order {order_id}")
        try:
            view: OrderView = await self._handle(order_id).execute_update(update, arg)
            return view
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise Conflict(cause.message) from err
            raise
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        closed = await run_in_threadpool(self._store.get, order_id)
        if closed is None:
            raise NotFound(f"order {order_id}")
        raise Conflict(refusal(closed.status, command) or f"the order is {closed.status}")
