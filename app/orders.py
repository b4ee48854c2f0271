"""The way to orders for every edge (API, CLI, webhooks, schedules): start workflows, send them updates,
query them, fall back to the read model. Failures are app.errors, never HTTP answers."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from app.errors import TEMPORAL_NOT_NOW, Busy, CommandRefused, InvalidField, OrderNotFound, whole_seconds
from core.config import Settings
from domain.models import (
    CancelOrder,
    ConfirmPayment,
    ConfirmReceipt,
    ConfirmShipment,
    OrderView,
    PlaceOrder,
    RestockCheck,
    StartOrder,
    TrackingUpdate,
    lines_differing_only_in_case,
)
from domain.operator import ACTION_COMMANDS, OperatorAction
from domain.restock import order_workflow_id
from domain.transitions import Command, refusal
from services.orders import OrderStore
from workflows.order import OrderWorkflow

log = structlog.get_logger(__name__)

# A carrier's clock or time zone may be off by hours, never by days: later than this is a typo or a bug.
TRACKING_CLOCK_SKEW = timedelta(days=1)


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(8)


def workflow_id(order_id: str) -> str:
    return order_workflow_id(order_id)  # one scheme, shared with the restock dispatcher


class Source(StrEnum):
    WORKFLOW = "workflow"  # the order's workflow answered: the order as it is now
    READ_MODEL = "read-model"  # the last copy the workflow saved: closed orders, or the workflow was slow


@dataclass(frozen=True)
class Answer:
    """An order as the API returns it, with where it came from and whether a command is still under way."""

    view: OrderView
    source: Source = Source.WORKFLOW
    created: bool = False  # a placement that started a new order
    command: str | None = None  # the command answered, as the workflow names it in `pending`
    unfinished: bool = False  # the command was accepted but had not finished when the API stopped waiting

    @property
    def in_progress(self) -> bool:
        """The command was accepted but not carried out yet. Only this command counts: an answer to a
        finished payment may still list an operator's hold queued behind it."""
        return self.unfinished or any(p.command == self.command for p in self.view.pending)


def _forget_start_error(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """The SDK parks a failed start's error on a future that only `workflow_handle()` reads: read it, so
    asyncio does not log "Future exception was never retrieved" for a failure handled here."""
    parked = getattr(start, "_workflow_handle", None)
    if isinstance(parked, asyncio.Future) and parked.done() and not parked.cancelled():
        parked.exception()


class _NoAnswer(Exception):
    """The order's workflow did not answer within the bound (worker slow or down, Temporal unreachable)."""


class OrderGateway:
    def __init__(self, client: Client, store: OrderStore, settings: Settings) -> None:
        self._client = client
        self._store = store
        self._settings = settings
        self._wait = settings.workflow_answer_timeout
        self._retry = whole_seconds(settings.busy_retry_after)

    @property
    def client(self) -> Client:
        return self._client

    @property
    def task_queue(self) -> str:
        return self._settings.task_queue

    def _handle(self, order_id: str) -> WorkflowHandle[OrderWorkflow, OrderView]:
        return self._client.get_workflow_handle_for(OrderWorkflow.run, workflow_id(order_id))

    @asynccontextmanager
    async def _within_bound(self) -> AsyncIterator[None]:
        """Bound a conversation with a workflow; a "not now" from Temporal or the clock becomes _NoAnswer."""
        try:
            async with asyncio.timeout(self._wait.total_seconds()):
                yield
        except (TimeoutError, RPCTimeoutOrCancelledError) as err:
            raise _NoAnswer(f"no answer within {whole_seconds(self._wait)} s") from err
        except RPCError as err:
            if err.status not in TEMPORAL_NOT_NOW:
                raise
            raise _NoAnswer(f"Temporal answered {err.status.name}: {err.message}") from err

    async def _saved(self, order_id: str) -> OrderView | None:
        return await run_in_threadpool(self._store.get, order_id)

    # ------------------------------------------------------------------ placement
    async def place(self, order: PlaceOrder) -> tuple[OrderView, bool]:
        """The order's view and True when it is new (for callers that need no more than that)."""
        answer = await self.place_order(order)
        return answer.view, answer.created

    async def place_order(self, order: PlaceOrder) -> Answer:
        """Start the order's workflow once per (shop, channel, channel_order_id); `created` when it is new."""
        if (conflict := lines_differing_only_in_case(order.lines)) is not None:
            raise InvalidField(*conflict)
        order_id, created = await run_in_threadpool(
            self._store.claim_key, order.channel.value, order.channel_order_id, new_order_id(), order.shop
        )
        busy = Busy(
            f"the order service is busy: order {order_id} ({order.channel} {order.channel_order_id}) is "
            f"recorded but its placement was not confirmed within {whole_seconds(self._wait)} s; retry in "
            f"{self._retry} s. Repeating the same request is safe: it returns this order, never a second "
            "one.",
            self._retry,
        )
        if not created:
            try:
                existing = await self._lookup(order_id)
            except _NoAnswer as exc:
                raise busy from exc
            if existing is not None:
                return existing
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
            async with self._within_bound():
                update: WorkflowUpdateHandle[OrderView] = await self._client.start_update_with_start_workflow(
                    OrderWorkflow.placed,
                    start_workflow_operation=start,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    rpc_timeout=self._wait,
                )
                view = await update.result(rpc_timeout=self._wait)
        except _NoAnswer as exc:
            log.warning("placement_not_confirmed", order_id=order_id, why=str(exc))
            raise busy from exc
        except WorkflowAlreadyStartedError as exc:  # closed, within retention
            try:
                closed = await self._lookup(order_id)
            except _NoAnswer as no_answer:
                raise busy from no_answer
            if closed is None:
                raise busy from exc
            return closed
        finally:
            _forget_start_error(start)
        return Answer(view, created=created)

    # ------------------------------------------------------------------ lookups
    async def _lookup(self, order_id: str) -> Answer | None:
        """Live orders from their workflow; closed or forgotten ones, and live ones whose workflow does
        not answer in time, from the read model. _NoAnswer when neither can say."""
        if not await run_in_threadpool(self._store.known, order_id):
            return None
        try:
            async with self._within_bound():
                return Answer(await self._handle(order_id).query(OrderWorkflow.view, rpc_timeout=self._wait))
        except _NoAnswer as exc:
            saved = await self._saved(order_id)
            if saved is None:
                raise
            log.warning("order_read_from_read_model", order_id=order_id, why=str(exc))
            return Answer(saved, Source.READ_MODEL)
        except RPCError as err:
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
        saved = await self._saved(order_id)
        return Answer(saved, Source.READ_MODEL) if saved else None

    async def find(self, order_id: str) -> Answer | None:
        try:
            return await self._lookup(order_id)
        except _NoAnswer as exc:
            raise Busy(
                f"the order service is busy and order {order_id} has no saved copy yet; "
                f"retry in {self._retry} s",
                self._retry,
            ) from exc

    async def get(self, order_id: str) -> Answer:
        found = await self.find(order_id)
        if found is None:
            raise OrderNotFound(order_id)
        return found

    # ------------------------------------------------------------------ commands
    async def pay(self, order_id: str, payment: ConfirmPayment, key: str | None = None) -> Answer:
        try:
            return await self.command(order_id, OrderWorkflow.pay, payment, Command.PAY, key)
        except CommandRefused:
            found = await self.get(order_id)
            if found.view.payment and found.view.payment.payment_id == payment.payment_id:
                return found  # a duplicate of the payment that paid this (now closed) order
            raise

    async def ship(self, order_id: str, shipment: ConfirmShipment, key: str | None = None) -> Answer:
        return await self.command(order_id, OrderWorkflow.ship, shipment, Command.SHIP, key)

    async def track(
        self, order_id: str, update: TrackingUpdate, key: str | None = None, now: datetime | None = None
    ) -> Answer:
        """A carrier event; one dated more than TRACKING_CLOCK_SKEW ahead of `now` is InvalidField."""
        if update.at > (now or datetime.now(UTC)) + TRACKING_CLOCK_SKEW:
            raise InvalidField(
                "at",
                f"{update.at.isoformat()} is more than a day in the future; send the time the carrier "
                "scanned the parcel, with its UTC offset (e.g. 2026-05-04T14:30:00+08:00)",
            )
        command = Command.DELIVER if update.status == "delivered" else Command.IN_TRANSIT
        return await self.command(order_id, OrderWorkflow.track, update, command, key)

    async def confirm_receipt(self, order_id: str, key: str | None = None) -> Answer:
        return await self.command(
            order_id, OrderWorkflow.confirm_receipt, ConfirmReceipt(), Command.CONFIRM_RECEIPT, key
        )

    async def cancel(self, order_id: str, request: CancelOrder, key: str | None = None) -> Answer:
        return await self.command(order_id, OrderWorkflow.cancel, request, Command.CANCEL, key)

    async def restock(self, order_id: str) -> OrderView:
        answer = await self.command(order_id, OrderWorkflow.restock, RestockCheck(), Command.RESTOCKED)
        return answer.view

    async def operate(self, order_id: str, request: OperatorAction, key: str | None = None) -> Answer:
        command = ACTION_COMMANDS[request.action]
        return await self.command(order_id, OrderWorkflow.operate, request, command, key)

    def ui_url(self, order_id: str) -> str:
        base = self._settings.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self._settings.temporal_namespace}/workflows/{workflow_id(order_id)}"

    async def command(
        self, order_id: str, update: Any, arg: Any, command: Command, key: str | None = None
    ) -> Answer:
        """Send an update; a refusal or a closed order becomes CommandRefused with the reason. `key` (the
        caller's Idempotency-Key) names the update, so Temporal answers a repeat with the first outcome.

        Not accepted within the bound: Busy. Accepted but not finished: the read model's copy, marked
        unfinished."""
        if not await run_in_threadpool(self._store.known, order_id):
            raise OrderNotFound(order_id)
        # The workflow lists an accepted command in `pending` under its update's name (the action's for
        # operator actions).
        name = arg.action.value if isinstance(arg, OperatorAction) else update.__name__
        accepted: WorkflowUpdateHandle[OrderView] | None = None
        try:
            async with self._within_bound():
                accepted = await self._handle(order_id).start_update(
                    update,
                    arg,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    id=f"{command.value}:{key}" if key else None,
                    rpc_timeout=self._wait,
                )
                view: OrderView = await accepted.result(rpc_timeout=self._wait)
                return Answer(view, command=name)
        except _NoAnswer as exc:
            log.warning("command_not_answered", order_id=order_id, command=command, accepted=bool(accepted))
            saved = await self._saved(order_id) if accepted else None
            if saved is None:
                raise self._busy(order_id, command) from exc
            return Answer(saved, Source.READ_MODEL, command=name, unfinished=True)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise CommandRefused(cause.message) from err
            raise
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        closed = await self._saved(order_id)
        if closed is None:
            raise OrderNotFound(order_id)
        raise CommandRefused(refusal(closed.status, command) or f"the order is {closed.status}")

    def _busy(self, order_id: str, command: Command) -> Busy:
        return Busy(
            f"the order service is busy: order {order_id} did not take the {command.value} command within "
            f"{whole_seconds(self._wait)} s; retry in {self._retry} s. The command is safe to repeat: it may "
            "still be carried out when the service catches up, and a repeat then answers with the order "
            "(a payment counts once per payment_id) or 409 saying it is already done; with the same "
            "Idempotency-Key header a repeat gets the first command's answer.",
            self._retry,
        )
