"""Reliability tests: real processes on loopback (Temporal dev server, the worker), killed and restarted.

The worker mails customers through a real SMTP server on loopback (tests/smtp.py's Mailroom, on a
thread of the test process, so it keeps receiving while the worker is killed and restarted); the
checks compare what that server received with what the orders should have mailed and with the
outbox table (tests/reliability/mail.py).

Each child runs in its own session (process group), so a kill reaches the whole group and nothing
outlives a test: every `start()` has a `kill()`/`stop()` in a `finally`. The orders are driven the way
the channel, the warehouse and the carrier would: every call is retried until it gets an answer, with
a stable update id so a resend is deduplicated by Temporal, and the checks afterwards read Temporal,
the order views, the mails received and the database (stock ledger, stock rows, outbox, payments,
refunds, read model).

Unpaid orders: the dev server runs in real time, so an order with the standard policy waits an hour
for its first reminder. The "payment timeout" orders therefore carry a compressed timing policy in
their workflow input (reminders at 3 s, 8 s and 13 s, hold 20 s): the same workflow code, timers and
notification activity as in production, only shorter offsets. Likewise the "auto complete" orders
carry a 6 s confirmation window. Every other order has the standard policy (fixed 5-day hold).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, func, text
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from domain.models import (
    Address,
    CancelOrder,
    Channel,
    ConfirmPayment,
    ConfirmReceipt,
    ConfirmShipment,
    Customer,
    OrderLine,
    OrderStatus,
    OrderView,
    PlaceOrder,
    StartOrder,
    TrackingUpdate,
)
from domain.operator import Action, OperatorAction
from domain.policy import OrderPolicy
from services.db import create_schema, make_engine
from services.inventory import InventoryService
from services.tables import OrderRow, Payment, Refund, ShipmentRequest, Stock, StockMove
from tests.conftest import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES, make_settings, temporal_binary
from tests.reliability.mail import mail_problems
from tests.smtp import Mailroom, serving
from workflows.order import OrderWorkflow
from workflows.search_attributes import cli_flags

T = TypeVar("T")
Handle = WorkflowHandle[OrderWorkflow, OrderView]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0


# ============================================================================ processes on loopback
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One child process in its own process group, its output appended to a log file."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: Mapping[str, str] | None = None):
        self.name = name
        self.args = args
        self.log_path = log_path
        self.env = dict(env) if env is not None else dict(os.environ)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"\n===== {self.name} start #{self.starts + 1} at {time.time():.3f}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group and reap it: a crash, no chance to clean up."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self._close_log()

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM the group, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # anything the leader left behind in its group
        self._close_log()
        return self.proc.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class DevServer(Child):
    """`temporal server start-dev` on loopback with a SQLite file, our search attributes registered.
    The ports are fixed at construction, so a restart comes back at the same address."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.db_file = tmp_path / "temporal.db"
        args = [temporal_binary("temporal"), "server", "start-dev", "--db-filename", str(self.db_file)]
        args += ["--ip", "127.0.0.1", "--port", str(self.port), "--headless"]
        args += ["--http-port", str(free_port()), "--metrics-port", str(free_port())]
        args += ["--log-level", "warn", *cli_flags()]
        super().__init__("temporal", args, tmp_path / "temporal.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def connect(self, within: float = READY_TIMEOUT) -> Client:
        """A client once the frontend answers (after a start or a restart)."""
        deadline = time.monotonic() + within
        while True:
            if not self.alive():
                raise AssertionError(f"the Temporal dev server exited:\n{self.tail()}")
            try:
                client = await asyncio.wait_for(
                    Client.connect(self.address, data_converter=pydantic_data_converter), timeout=5
                )
                await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=None)
                return client
            except (RuntimeError, RPCError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"Temporal did not answer within {within} s:\n{self.tail()}"
                    ) from None
                await asyncio.sleep(0.2)


class WorkerProcess(Child):
    """The real worker: `python worker.py` configured only through ORDERS_* variables."""

    def __init__(self, tmp_path: Path, settings: Mapping[str, str]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
        env.update(settings)
        env.setdefault("ORDERS_LOG_JSON", "true")
        super().__init__("worker", [sys.executable, "worker.py"], tmp_path / "worker.log", env)

    async def wait_polling(self, client: Client, task_queue: str, within: float = READY_TIMEOUT) -> None:
        """Until this process (by pid) polls the workflow task queue."""
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        deadline = time.monotonic() + within
        while True:
            if not self.alive():
                raise AssertionError(f"the worker exited:\n{self.tail()}")
            with suppress(RPCError):
                pollers = (await client.workflow_service.describe_task_queue(request)).pollers
                if any(p.identity.startswith(f"{self.pid}@") for p in pollers):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not poll {task_queue} within {within} s")
            await asyncio.sleep(0.2)


@contextmanager
def throwaway_database(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (dropped after it); a SQLite file when PostgreSQL is
    not there (a failure instead when ORDERFLOW_REQUIRE_POSTGRES=1, as in CI)."""
    name = f"orderflow_rel_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (ORDERFLOW_REQUIRE_POSTGRES=1) but: {exc}")
        yield f"sqlite:///{tmp_path}/orderflow.db"
        return
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


WAREHOUSE = "WH-SZ"
ON_HAND = 400
PRICES = {"RL-CASE": Decimal("12.50"), "RL-CABLE": Decimal("4.90"), "RL-CHARGER": Decimal("19.90")}


@dataclass
class Stack:
    server: DevServer
    worker: WorkerProcess
    client: Client
    engine: Engine
    task_queue: str
    mail: Mailroom


@asynccontextmanager
async def running_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Dev server + worker subprocess + SMTP server + a database with stock; every process group
    ended after."""
    server = DevServer(tmp_path)
    worker: WorkerProcess | None = None
    mail = Mailroom()
    with throwaway_database(tmp_path) as database_url, serving(mail) as smtp_port:
        engine = make_engine(database_url)
        try:
            create_schema(engine)
            inventory = InventoryService(engine)
            for sku in PRICES:
                inventory.set_on_hand(WAREHOUSE, sku, ON_HAND)
            server.start()
            client = await server.connect()
            task_queue = f"orders-rel-{uuid.uuid4().hex[:8]}"
            worker = WorkerProcess(
                tmp_path,
                {
                    "ORDERS_TEMPORAL_ADDRESS": server.address,
                    "ORDERS_DATABASE_URL": database_url,
                    "ORDERS_TASK_QUEUE": task_queue,
                    "ORDERS_PAYMENT_HOLD_RULE": "fixed",
                    "ORDERS_SMTP_HOST": "127.0.0.1",
                    "ORDERS_SMTP_PORT": str(smtp_port),
                },
            )
            worker.start()
            await worker.wait_polling(client, task_queue)
            yield Stack(server, worker, client, engine, task_queue, mail)
        finally:
            if worker is not None:
                worker.kill()
            server.stop(grace=10)
            engine.dispose()


# ============================================================================ orders and how they go
STANDARD = make_settings().order_policy()  # fixed 5-day hold, reminders at 1 h / 24 h / 72 h
FAST_UNPAID = STANDARD.model_copy(
    update={
        "payment_hold": timedelta(seconds=20),
        "reminder_offsets": (timedelta(seconds=3), timedelta(seconds=8), timedelta(seconds=13)),
    }
)
FAST_CONFIRM = STANDARD.model_copy(update={"confirm_window": timedelta(seconds=6)})
REMINDERS = ("payment_reminder_1", "payment_reminder_2", "payment_reminder_3")


class Scenario(StrEnum):
    COMPLETE = "complete"  # pay, ship, in transit, delivered, buyer confirms
    AUTO_COMPLETE = "auto_complete"  # pay, ship, delivered, the confirmation window ends
    PAYMENT_TIMEOUT = "payment_timeout"  # never paid: 3 reminders, then cancelled
    CANCEL_UNPAID = "cancel_unpaid"  # the buyer cancels on the channel before paying
    CANCEL_PAID = "cancel_paid"  # paid and locked, then cancelled on the channel: refund
    OPERATOR_CANCEL_UNPAID = "operator_cancel_unpaid"
    OPERATOR_CANCEL_PAID = "operator_cancel_paid"


SHIPS = {Scenario.COMPLETE, Scenario.AUTO_COMPLETE}
PAYS = SHIPS | {Scenario.CANCEL_PAID, Scenario.OPERATOR_CANCEL_PAID}
REFUNDS = {Scenario.CANCEL_PAID, Scenario.OPERATOR_CANCEL_PAID}


@dataclass
class Plan:
    tag: str
    number: int
    scenario: Scenario
    placed: PlaceOrder
    policy: OrderPolicy
    start_after: float
    think: list[float]

    @property
    def order_id(self) -> str:
        return f"ord_{self.tag}{self.number:03d}"

    @property
    def workflow_id(self) -> str:
        return f"order-{self.order_id}"

    @property
    def payment(self) -> ConfirmPayment:
        return ConfirmPayment(
            payment_id=f"pay_{self.order_id}", amount=self.placed.total, currency="USD", method="card"
        )

    @property
    def expected_status(self) -> OrderStatus:
        return OrderStatus.COMPLETED if self.scenario in SHIPS else OrderStatus.CANCELLED

    @property
    def expected_notifications(self) -> set[str]:
        if self.scenario in SHIPS:
            return {"order_shipped"}
        if self.scenario == Scenario.PAYMENT_TIMEOUT:
            return {*REMINDERS, "order_cancelled"}
        return {"order_cancelled"}


def make_plans(rng: random.Random, mix: Mapping[Scenario, int], tag: str, spread: float) -> list[Plan]:
    """Orders of the given scenarios in a seeded random order, placed over `spread` seconds."""
    scenarios = [scenario for scenario, count in mix.items() for _ in range(count)]
    rng.shuffle(scenarios)
    plans = []
    for number, scenario in enumerate(scenarios):
        skus = rng.sample(sorted(PRICES), rng.randint(1, 2))
        placed = PlaceOrder(
            channel=rng.choice([Channel.SHOPIFY, Channel.AMAZON, Channel.EBAY]),
            channel_order_id=f"{tag}-{number:03d}",
            customer=Customer(name=f"Buyer {number}", email=f"buyer{number}@example.com"),
            shipping_address=Address(
                country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"
            ),
            lines=[OrderLine(sku=sku, quantity=rng.randint(1, 3), unit_price=PRICES[sku]) for sku in skus],
            currency="USD",
        )
        policy = {Scenario.PAYMENT_TIMEOUT: FAST_UNPAID, Scenario.AUTO_COMPLETE: FAST_CONFIRM}.get(
            scenario, STANDARD
        )
        think = [rng.uniform(0.1, 1.5) for _ in range(6)]
        plans.append(Plan(tag, number, scenario, placed, policy, rng.uniform(0.0, spread), think))
    return plans


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


# ============================================================================ what must hold after
async def outcome_problems(stack: Stack, plans: list[Plan], run: Run) -> list[str]:
    """Everything that is wrong after the run: the order views, the workflows and their histories,
    the mails received against the outbox, and the database (ledger, stock rows, payments,
    refunds, shipment requests, read model)."""
    problems: list[str] = []
    for plan, result in zip(plans, run.results, strict=True):
        if isinstance(result, BaseException):
            cause = result.cause if isinstance(result, WorkflowFailureError) else None
            problems.append(f"{plan.order_id} ({plan.scenario}): {result!r} {cause!r}")
        else:
            problems += view_problems(plan, result)
    problems += await workflow_problems(stack.client, plans)
    problems += await asyncio.to_thread(ledger_problems, stack.engine, plans)
    problems += await asyncio.to_thread(mail_problems, stack.engine, plans, stack.mail.snapshot())
    return problems


def view_problems(plan: Plan, view: OrderView) -> list[str]:
    problems = []
    if view.status != plan.expected_status:
        problems.append(
            f"{plan.order_id} ({plan.scenario}): ended {view.status}, expected {plan.expected_status}"
        )
    events = Counter(event.kind for event in view.timeline)
    reminders = 3 if plan.scenario == Scenario.PAYMENT_TIMEOUT else 0
    if events["payment_reminder"] != reminders or view.reminders_sent != reminders:
        problems.append(
            f"{plan.order_id}: {events['payment_reminder']} reminder events, reminders_sent "
            f"{view.reminders_sent}, expected {reminders}"
        )
    for kind in ("placed", "completed" if plan.scenario in SHIPS else "cancelled"):
        if events[kind] != 1:
            problems.append(f"{plan.order_id}: {events[kind]} '{kind}' timeline events")
    if plan.scenario in SHIPS and events["shipped"] != 1:
        problems.append(f"{plan.order_id}: {events['shipped']} 'shipped' timeline events")
    if plan.scenario == Scenario.PAYMENT_TIMEOUT and view.cancel_reason != "payment_timeout":
        problems.append(f"{plan.order_id}: cancelled for {view.cancel_reason!r}")
    return problems


async def workflow_problems(client: Client, plans: list[Plan]) -> list[str]:
    """Every workflow closed as Completed, and no workflow task failed (a non-determinism error on
    replay after a crash would show here; a task lost with a killed worker is a timeout, not this)."""
    problems: list[str] = []

    async def one(plan: Plan) -> None:
        handle = client.get_workflow_handle(plan.workflow_id)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.COMPLETED:
            problems.append(f"{plan.order_id}: workflow {description.status}")
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                attrs = event.workflow_task_failed_event_attributes
                problems.append(
                    f"{plan.order_id}: workflow task failed ({attrs.cause}): {attrs.failure.message}"
                )

    for chunk in range(0, len(plans), 20):
        await asyncio.gather(*(one(plan) for plan in plans[chunk : chunk + 20]))
    return problems


def ledger_problems(engine: Engine, plans: list[Plan]) -> list[str]:
    problems: list[str] = []
    with Session(engine) as session:
        moves = list(session.exec(select(StockMove)).all())
        stock = {
            row.sku: row for row in session.exec(select(Stock).where(Stock.warehouse == WAREHOUSE)).all()
        }
        payments = Counter(session.exec(select(Payment.order_id)).all())
        refunds = Counter(session.exec(select(Refund.order_id)).all())
        requests = {(r.order_id, r.warehouse): r.status for r in session.exec(select(ShipmentRequest)).all()}
        projected = {r.order_id: r.status for r in session.exec(select(OrderRow)).all()}
        duplicates = session.exec(
            select(StockMove.order_id, StockMove.line_no, StockMove.warehouse, StockMove.kind)
            .group_by(
                col(StockMove.order_id),
                col(StockMove.line_no),
                col(StockMove.warehouse),
                col(StockMove.kind),
                col(StockMove.generation),
            )
            .having(func.count() > 1)
        ).all()
    problems += [f"stock move recorded twice: {row}" for row in duplicates]

    by_order: dict[str, list[StockMove]] = defaultdict(list)
    for move in moves:
        by_order[move.order_id].append(move)
    shipped_units: Counter[str] = Counter()
    for plan in plans:
        mine = by_order.pop(plan.order_id, [])
        kinds = Counter(m.kind for m in mine)
        for opening, closings in (
            ("reserve", ("unreserve", "lock_from_reserve")),
            ("lock", ("release", "ship")),
        ):
            for move in (m for m in mine if m.kind == opening):
                key = (move.line_no, move.warehouse, move.generation)
                closed = [
                    m for m in mine if m.kind in closings and (m.line_no, m.warehouse, m.generation) == key
                ]
                if len(closed) != 1:
                    problems.append(
                        f"{plan.order_id}: {opening} of line {move.line_no} closed {len(closed)} times"
                    )
        wanted = {line.sku: line.quantity for line in plan.placed.lines}
        if plan.scenario in SHIPS:
            got: Counter[str] = Counter()
            for move in mine:
                if move.kind == "ship":
                    got[move.sku] += move.quantity
            if dict(got) != wanted:
                problems.append(f"{plan.order_id}: shipped {dict(got)}, ordered {wanted}")
            shipped_units.update(got)
        elif kinds["ship"]:
            problems.append(f"{plan.order_id}: cancelled but stock shipped")
        locks = len(wanted) if plan.scenario in PAYS else 0
        if kinds["lock"] != locks or kinds["reserve"] != len(wanted):
            problems.append(
                f"{plan.order_id}: {kinds['reserve']} reserve and {kinds['lock']} lock rows for "
                f"{len(wanted)} lines, expected {len(wanted)} and {locks}"
            )

        paid = 1 if plan.scenario in PAYS else 0
        if payments[plan.order_id] != paid:
            problems.append(f"{plan.order_id}: {payments[plan.order_id]} payments recorded, expected {paid}")
        refunded = 1 if plan.scenario in REFUNDS else 0
        if refunds[plan.order_id] != refunded:
            problems.append(f"{plan.order_id}: {refunds[plan.order_id]} refunds, expected {refunded}")
        request = requests.get((plan.order_id, WAREHOUSE))
        expected_request = ("shipped" if plan.scenario in SHIPS else "cancelled") if paid else None
        if request != expected_request:
            problems.append(f"{plan.order_id}: shipment request {request}, expected {expected_request}")
        if projected.get(plan.order_id) != plan.expected_status:
            problems.append(f"{plan.order_id}: read model says {projected.get(plan.order_id)}")
    problems += [f"stock moves of an unknown order {order_id}" for order_id in by_order]

    for sku, row in stock.items():
        if (row.locked, row.reserved) != (0, 0):
            problems.append(
                f"{sku}: {row.locked} locked and {row.reserved} reserved after every order closed"
            )
        if row.on_hand != ON_HAND - shipped_units[sku]:
            problems.append(
                f"{sku}: on_hand {row.on_hand}, expected {ON_HAND} - {shipped_units[sku]} shipped"
            )

    return problems
