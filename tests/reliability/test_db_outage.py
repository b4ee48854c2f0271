"""A PostgreSQL outage of several minutes delays orders and loses none (issue #8).

The API and the worker reach PostgreSQL through loopback relays (tests/support/relay.py) that the test cuts:
first the worker's, so commands the API takes wait on steps that keep failing, then the API's too,
so nobody reaches the database. Temporal is the time-skipping server: the minutes of the outage pass
in workflow time (`env.sleep`) while the relays are down for a few real seconds. Throughout, the API
answers 2xx, or 503 with Retry-After, never a 500; like a well-behaved client, the test repeats every
503 after the outage with the same payload. Afterwards every order is where its commands took it, no
workflow failed, the read model agrees with the workflows, each payment and refund is recorded once
and every stock row agrees with the ledger (on_hand = available + locked + reserved).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from app.orders import workflow_id
from domain.access import Role
from domain.models import OrderStatus, OrderView
from services.auth import ApiKeyService
from services.db import make_engine
from services.inventory import InventoryService
from services.orders import OrderStore
from services.payments import PaymentService
from services.tables import Payment
from tests.support.factories import STARTED, eventually, settle_and_terminate
from tests.support.payloads import body
from tests.support.relay import TcpRelay, relayed
from tests.support.temporal import make_settings, running_worker
from tests.workflows.test_inventory_flow import stock
from workflows.order import OrderWorkflow

# PostgreSQL only: the `engine` fixture gives a fresh schema on the session's throwaway database, and
# conftest fails (not skips) when PostgreSQL is absent under ORDERFLOW_REQUIRE_POSTGRES=1.
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

ANSWER_WITHIN = "6s"  # a failing step's round of 3 quick attempts (~3 s) is answered within this
RETRY_AFTER = "2s"
OUTAGE = timedelta(minutes=6)  # workflow time the database stays unreachable
RECOVERY = timedelta(minutes=15)  # longer than the longest step back-off (10 min) and catch-up due
WITHIN = 120  # seconds of real time for the whole test (it takes about 20)
ON_HAND = {"CASE-IP15": 100, "USB-C-1M": 100}
UNITS = 3  # tests.support.payloads.body: 2 x CASE-IP15 and 1 x USB-C-1M
HELD = {  # (locked, reserved) units an order holds in the end
    OrderStatus.CANCELLED: (0, 0),
    OrderStatus.STOCK_LOCKED: (UNITS, 0),
    OrderStatus.PENDING_PAYMENT: (0, UNITS),
}
TOTAL = "29.90"
S = OrderStatus
Handle = WorkflowHandle[OrderWorkflow, OrderView]


@dataclass
class Order:
    """One order as its channel and buyer see it: what they asked for, and the id the API gave."""

    ref: str
    pay: bool = False
    cancel: bool = False
    order_id: str | None = None

    @property
    def expected(self) -> OrderStatus:
        if self.cancel:
            return S.CANCELLED
        return S.STOCK_LOCKED if self.pay else S.PENDING_PAYMENT

    @property
    def payment(self) -> dict[str, str]:
        return {"payment_id": f"psp-{self.ref}", "amount": TOTAL, "currency": "USD", "method": "card"}


@dataclass
class Shop:
    """The API as a channel integration uses it, with every answer it gave and the requests to repeat."""

    env: WorkflowEnvironment
    engine: Engine  # straight to PostgreSQL, for setting up and checking; never cut
    api: httpx.AsyncClient
    worker_relay: TcpRelay
    api_relay: TcpRelay
    answers: list[httpx.Response] = field(default_factory=list)
    unanswered: list[Callable[[], Awaitable[httpx.Response]]] = field(default_factory=list)

    async def send(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        response = await request()
        if response.status_code == 503:
            self.unanswered.append(request)
        return response

    async def place(self, order: Order) -> httpx.Response:
        async def request() -> httpx.Response:
            response = await self.api.post("/orders", json=body(order.ref))
            if response.status_code in (200, 201):
                self.learn(order, response.json()["order_id"])
            elif response.status_code == 503:  # recorded but not confirmed: the detail names it
                named = re.search(r"order (ord_[0-9a-f]+)", response.json()["detail"])
                if named:
                    self.learn(order, named.group(1))
            return response

        return await self.send(request)

    async def pay(self, order: Order) -> httpx.Response:
        return await self.send(lambda: self.api.post(f"/orders/{order.order_id}/payment", json=order.payment))

    async def cancel(self, order: Order) -> httpx.Response:
        reason = {"reason": "buyer cancelled on the channel"}
        return await self.send(lambda: self.api.post(f"/orders/{order.order_id}/cancel", json=reason))

    def learn(self, order: Order, order_id: str) -> None:
        assert order.order_id in (None, order_id), f"{order.ref} became a second order"
        if order.order_id is None:
            order.order_id = order_id
            STARTED.append(self.env.client.get_workflow_handle(workflow_id(order_id)))

    async def repeat_unanswered(self) -> None:
        """After the outage, every request that got 503, again with the same payload until answered."""
        requests, self.unanswered = self.unanswered, []
        for request in requests:
            for _ in range(20):
                response = await request()
                if response.status_code != 503:
                    assert response.status_code in (200, 201, 202), response.text
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError(f"still 503 after the outage: {response.text}")

    def handle(self, order: Order) -> Handle:
        assert order.order_id is not None, f"{order.ref} was never placed"
        return self.env.client.get_workflow_handle_for(OrderWorkflow.run, workflow_id(order.order_id))


@pytest.fixture
async def shop(time_skipping_env: WorkflowEnvironment, db_url: str, engine: Engine) -> AsyncIterator[Shop]:
    env = time_skipping_env
    stock(engine, "WH-SZ", ON_HAND)
    key, _ = ApiKeyService(engine).create(f"channel-{uuid.uuid4().hex[:6]}@demo", Role.OPERATOR)
    answers: list[httpx.Response] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        answers.append(response)

    with relayed(db_url) as (worker_url, worker_relay), relayed(db_url) as (api_url, api_relay):
        settings = make_settings(
            temporal_address=env.client.service_client.config.target_host,
            database_url=api_url,
            workflow_answer_timeout=ANSWER_WITHIN,
            busy_retry_after=RETRY_AFTER,
            shutdown_grace="1s",
        )
        worker_engine = make_engine(worker_url)
        app = create_app(settings)
        try:
            async with (
                app.router.lifespan_context(app),
                running_worker(env.client, settings, worker_engine),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://test",
                    headers={"authorization": f"Bearer {key}"},
                    event_hooks={"response": [record]},
                    timeout=30,
                ) as api,
            ):
                shop = Shop(env, engine, api, worker_relay, api_relay, answers)
                try:
                    yield shop
                finally:
                    # however the test ended, the database comes back before the orders are let go
                    worker_relay.reopen()
                    api_relay.reopen()
                    await settle_and_terminate(env.client)
        finally:
            worker_engine.dispose()


# ------------------------------------------------------------------ checks
async def status_of(client: Client, handle: Handle) -> WorkflowExecutionStatus.ValueType:
    """Read raw: the typed describe() cannot decode the test server's datetime search attributes."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    return described.workflow_execution_info.status


RUNNING = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
COMPLETED = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED


def unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.json()["detail"] == "the database is unavailable; retry in 2 s"


def accepted(response: httpx.Response, *pending: tuple[str, str]) -> None:
    """202: the order took the command and will carry it out; a step it waits for keeps failing."""
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/orders/{response.json()['order_id']}"
    if response.headers["x-orderflow-source"] == "workflow":  # (else the API stopped waiting first)
        view = OrderView.model_validate(response.json())
        assert [(p.command, p.waiting_on) for p in view.pending] == list(pending)


def kinds(view: OrderView) -> list[str]:
    return [event.kind for event in view.timeline]


def payments_of(engine: Engine, order_id: str) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(Payment).where(Payment.order_id == order_id)
        ).one()


async def caught_up(store: OrderStore, view: OrderView) -> OrderView:
    """The read model's copy once it has everything the workflow recorded."""

    def probe() -> OrderView | None:
        saved = store.get(view.order_id)
        return saved if saved is not None and saved.timeline == view.timeline else None

    saved: OrderView | None = await eventually(probe)
    assert saved is not None
    return saved


async def until_paid(shop: Shop, order: Order) -> None:
    """Once the order's workflow has recorded the payment (the steps after it are still to come)."""
    for _ in range(250):
        if order.order_id and "paid" in kinds(await shop.handle(order).query(OrderWorkflow.view)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{order.ref} was never paid")


# ------------------------------------------------------------------ the test
async def test_a_database_outage_delays_orders_and_loses_none(shop: Shop) -> None:
    async with asyncio.timeout(WITHIN):  # bounded: a hang fails here, and the fixture still cleans up
        orders = await outage(shop)
        await recovered(shop, orders)


async def outage(shop: Shop) -> dict[str, Order]:
    """Orders placed and paid, then the outage: the worker's connections first, then the API's."""
    orders = {ref: Order(ref) for ref in (f"DB-{n:02}" for n in range(1, 13))}
    for order in orders.values():
        assert (await shop.place(order)).status_code == 201
    for ref in ("DB-01", "DB-02"):
        orders[ref].pay = True
        paid = await shop.pay(orders[ref])
        assert (paid.status_code, paid.json()["status"]) == (200, "stock_locked"), paid.text

    # 1. the worker loses the database while payments are under way: refused, and its open
    # connections cut (the steps after the first payment, the other payments: whatever is in flight)
    paying = [orders[ref] for ref in ("DB-03", "DB-04", "DB-05")]
    in_flight = [asyncio.create_task(shop.pay(order)) for order in paying]
    await until_paid(shop, paying[0])
    assert shop.worker_relay.close() > 0
    for order, response in zip(paying, await asyncio.gather(*in_flight), strict=True):
        order.pay = True
        assert response.status_code in (200, 202), response.text

    # the API still takes commands: answered 202, the orders wait and say what for
    early = [Order("DB-N1"), Order("DB-N2")]
    orders |= {order.ref: order for order in early}
    for ref in ("DB-06", "DB-07"):
        orders[ref].pay = True
    for ref in ("DB-01", "DB-07", "DB-08"):
        orders[ref].cancel = True
    placed_1, placed_2, pay_6, pay_7, cancel_1, cancel_8 = await asyncio.gather(
        shop.place(early[0]),
        shop.place(early[1]),
        shop.pay(orders["DB-06"]),
        shop.pay(orders["DB-07"]),
        shop.cancel(orders["DB-01"]),
        shop.cancel(orders["DB-08"]),
    )
    for placed in (placed_1, placed_2):  # recorded, but its stock could not be reserved in time
        assert placed.status_code == 503, placed.text
        assert placed.headers["retry-after"] == "2"
        assert "never a second one" in placed.json()["detail"]
    accepted(pay_6, ("pay", "record payment"))
    accepted(pay_7, ("pay", "record payment"))
    accepted(cancel_1, ("cancel", "release stock"))
    accepted(cancel_8, ("cancel", "release stock"))
    # DB-07's buyer cancels right after paying: queued behind the payment, answered at once
    accepted(await shop.cancel(orders["DB-07"]), ("pay", "record payment"), ("cancel", "queued behind pay"))
    # a live order is read from its workflow: it says what it waits on
    followed = await shop.api.get(f"/orders/{orders['DB-06'].order_id}")
    assert followed.status_code == 200, followed.text
    assert (followed.json()["waiting_on"], [p["command"] for p in followed.json()["pending"]]) == (
        "record payment",
        ["pay"],
    )

    # 2. then the API loses it too: every request is a 503 with Retry-After, safe to repeat
    assert shop.api_relay.close() > 0
    late = [Order("DB-N3"), Order("DB-N4")]
    orders |= {order.ref: order for order in late}
    orders["DB-09"].pay = True
    for ref in ("DB-02", "DB-10"):
        orders[ref].cancel = True
    for response in [
        await shop.place(late[0]),
        await shop.place(late[1]),
        await shop.pay(orders["DB-09"]),
        await shop.cancel(orders["DB-02"]),
        await shop.cancel(orders["DB-10"]),
        await shop.api.get(f"/orders/{orders['DB-06'].order_id}"),
        await shop.api.get("/orders"),
    ]:
        unavailable(response)

    # minutes pass for the orders (not for this machine): they keep waiting, none fails
    await shop.env.sleep(OUTAGE)
    waiting_for = {
        **{order.ref: ("reserve stock for the unpaid order", []) for order in early},
        "DB-06": ("record payment", ["pay"]),
        "DB-07": ("record payment", ["pay", "cancel"]),
        "DB-01": ("release stock", ["cancel"]),
        "DB-08": ("release stock", ["cancel"]),
    }
    for order in orders.values():
        if order.order_id is None:
            continue  # its placement never reached the database: nothing was recorded
        handle = shop.handle(order)
        assert await status_of(shop.env.client, handle) == RUNNING, order.ref
        view = await handle.query(OrderWorkflow.view)
        assert "step_failed" not in kinds(view), order.ref
        waits = (view.waiting_on, [p.command for p in view.pending])
        if order in paying:  # cut somewhere in its payment: whichever step it was on waits
            assert view.waiting_on is not None or not view.pending, (order.ref, waits)
        else:
            assert waits == waiting_for.get(order.ref, (None, [])), order.ref
    return orders


async def recovered(shop: Shop, orders: dict[str, Order]) -> None:
    """The database is back: the client repeats what got 503 and goes on; nothing is lost or doubled."""
    shop.worker_relay.reopen()
    shop.api_relay.reopen()
    await shop.repeat_unanswered()
    assert all(order.order_id is not None for order in orders.values())
    for order in (orders["DB-N1"], orders["DB-N3"]):  # buyers pay orders placed during the outage
        order.pay = True
        assert (await shop.pay(order)).status_code in (200, 202)
    await shop.env.sleep(RECOVERY)

    # every order is where its commands took it, the read model with it; nothing was done twice
    inventory, store = InventoryService(shop.engine), OrderStore(shop.engine)
    for order in orders.values():
        assert order.order_id is not None
        handle = shop.handle(order)
        view = await handle.query(OrderWorkflow.view)
        assert view.status == order.expected, (order.ref, kinds(view))
        assert (view.waiting_on, view.pending) == (None, []), order.ref
        ended = COMPLETED if order.cancel else RUNNING
        assert await status_of(shop.env.client, handle) == ended, order.ref
        paid = 1 if order.pay else 0
        assert kinds(view).count("paid") == paid, order.ref
        assert payments_of(shop.engine, order.order_id) == paid, order.ref
        refunds = PaymentService(shop.engine).refunds_for(order.order_id)
        assert len(refunds) == (1 if order.pay and order.cancel else 0), order.ref
        lock, reserve = HELD[order.expected]
        assert inventory.held_by(order.order_id) == {"lock": lock, "reserve": reserve}, order.ref
        assert (await caught_up(store, view)).status == view.status, order.ref

    # on_hand = available + locked + reserved on every row, as the ledger says
    assert inventory.ledger_problems() == []
    locked = sum(1 for o in orders.values() if o.expected == S.STOCK_LOCKED)
    reserved = sum(1 for o in orders.values() if o.expected == S.PENDING_PAYMENT)
    for sku, per_order in (("CASE-IP15", 2), ("USB-C-1M", 1)):
        level = inventory.get("WH-SZ", sku)
        assert level is not None
        assert (level.on_hand, level.locked, level.reserved) == (
            ON_HAND[sku],
            locked * per_order,
            reserved * per_order,
        )
        assert level.available >= 0

    # the API never answered with a 500: each answer was 2xx, or 503 with Retry-After
    statuses = [answer.status_code for answer in shop.answers]
    assert set(statuses) <= {200, 201, 202, 503}, statuses
    assert all("retry-after" in a.headers for a in shop.answers if a.status_code == 503)
