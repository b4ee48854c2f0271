"""A paused worker, an unreachable database: the API still answers, from the read model or with 503."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import Response
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.routes.orders import respond
from app.orders import Answer, Source
from core.config import Settings
from domain.access import Role
from domain.models import Address, Channel, Customer, OrderLine, OrderStatus, OrderView, PendingCommand
from services.auth import ApiKeyService
from services.db import create_schema, make_engine
from tests.support.payloads import PAYMENT, body
from tests.support.relay import relayed
from tests.support.temporal import make_settings, running_worker
from tests.support.warehouses import EVERYWHERE

ANSWER_WITHIN = "1s"  # the bound the API waits for a workflow; small so the test is quick
RETRY_AFTER = "2s"


@dataclass
class Stack:
    client: httpx.AsyncClient
    settings: Settings
    env: WorkflowEnvironment
    engine: Engine
    statuses: list[int] = field(default_factory=list)
    _worker: AsyncExitStack | None = None

    async def start_worker(self) -> None:
        assert self._worker is None
        self._worker = AsyncExitStack()
        await self._worker.enter_async_context(running_worker(self.env.client, self.settings, self.engine))

    async def stop_worker(self) -> None:
        """Nobody polls the task queue afterwards: exactly what a paused or crashed worker looks like."""
        assert self._worker is not None
        await self._worker.aclose()
        self._worker = None


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, db_url: str, engine: Engine) -> AsyncIterator[Stack]:
    settings = make_settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        database_url=db_url,
        workflow_answer_timeout=ANSWER_WITHIN,
        busy_retry_after=RETRY_AFTER,
        shutdown_grace="1s",
    )
    app = create_app(settings)
    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    async with app.router.lifespan_context(app):
        key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"authorization": f"Bearer {key}"},
            event_hooks={"response": [record]},
        ) as client:
            stack = Stack(client, settings, dev_env, engine, statuses)
            await stack.start_worker()
            try:
                assert (await client.put("/warehouses/WH-SZ", json=EVERYWHERE)).status_code == 200
                for sku in ("CASE-IP15", "USB-C-1M"):
                    stocked = await client.put(f"/inventory/WH-SZ/{sku}", json={"on_hand": 10})
                    assert stocked.status_code == 200, stocked.text
                yield stack
            finally:
                if stack._worker is not None:
                    await stack.stop_worker()


def assert_busy(response: httpx.Response) -> str:
    """503 with Retry-After and a detail that says when to retry; returns the detail."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    detail: str = response.json()["detail"]
    assert "retry in 2 s" in detail
    return detail


async def until_answered(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Repeat a request while it answers 503, as a client honouring Retry-After would (sooner here)."""
    for _ in range(60):
        response = await call()
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.5)
    raise AssertionError(f"still 503 after 60 tries: {response.text}")


async def eventually(
    api: httpx.AsyncClient, order_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """GET the order until `done` holds (how a client follows a 202 or a command it repeated)."""
    for _ in range(60):
        response = await api.get(f"/orders/{order_id}")
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200 and done(response.json()):
            return dict(response.json())
        await asyncio.sleep(0.5)
    raise AssertionError(f"order {order_id} never got there: {response.text}")


def kinds(view: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in view["timeline"]]


async def test_with_the_worker_paused_reads_come_from_the_read_model_and_commands_get_503(
    stack: Stack,
) -> None:
    api = stack.client
    placed = await until_answered(lambda: api.post("/orders", json=body("SW-1")))
    assert placed.status_code in (200, 201), placed.text
    order_id = placed.json()["order_id"]
    other = (await until_answered(lambda: api.post("/orders", json=body("SW-2")))).json()["order_id"]
    for _ in range(100):  # both saved to the read model before the pause
        listed = (await api.get("/orders", params={"channel": "shopee"})).json()["items"]
        if {order_id, other} <= {item["order_id"] for item in listed}:
            break
        await asyncio.sleep(0.2)

    await stack.stop_worker()

    # a lookup and a duplicate placement answer from the read model, and say so
    fetched = await api.get(f"/orders/{order_id}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.headers["x-orderflow-source"] == "read-model"
    assert (fetched.json()["order_id"], fetched.json()["status"]) == (order_id, "pending_payment")
    again = await api.post("/orders", json=body("SW-1"))
    assert again.status_code == 200, again.text
    assert again.headers["x-orderflow-source"] == "read-model"
    assert again.json()["order_id"] == order_id

    # nothing can carry out a command now: 503, safe to repeat
    keyed = {"Idempotency-Key": "pay-attempt-1"}
    detail = assert_busy(await api.post(f"/orders/{order_id}/payment", json=PAYMENT, headers=keyed))
    assert f"order {order_id} did not take the pay command" in detail
    assert "safe to repeat" in detail
    cancel = {"reason": "buyer asked"}
    assert_busy(await api.post(f"/orders/{other}/cancel", json=cancel))
    note = {"reason": "called the buyer", "params": {"text": "will pay tonight"}}
    noted = {"Idempotency-Key": "note-1"}
    assert_busy(await api.post(f"/orders/{order_id}/actions/note", json=note, headers=noted))
    batch = await api.post("/orders/actions/hold", json={"order_ids": [order_id, other], "reason": "audit"})
    assert batch.status_code == 200, batch.text
    assert [item["status_code"] for item in batch.json()["results"]] == [503, 503]

    # a new placement cannot be confirmed: 503 naming the order it recorded; nothing saved to show yet
    detail = assert_busy(await api.post("/orders", json=body("SW-3")))
    assert "never a second one" in detail
    match = re.search(r"order (ord_[0-9a-f]+)", detail)
    assert match, detail
    new_id = match.group(1)
    assert_busy(await api.get(f"/orders/{new_id}"))
    assert (await api.get("/orders/ord_0000000000000000")).status_code == 404

    await stack.start_worker()

    # the same requests again: the commands sent during the pause still ran, each exactly once
    paid = await until_answered(lambda: api.post(f"/orders/{order_id}/payment", json=PAYMENT, headers=keyed))
    assert paid.status_code in (200, 202), paid.text
    noted_again = await until_answered(
        lambda: api.post(f"/orders/{order_id}/actions/note", json=note, headers=noted)
    )
    assert noted_again.status_code in (200, 202), noted_again.text
    final = await eventually(
        api, order_id, lambda v: v["status"] == "stock_locked" and "operator_note" in kinds(v)
    )
    assert (kinds(final).count("paid"), kinds(final).count("operator_note")) == (1, 1)
    # the first cancel was still queued and ran when the worker came back: a repeat says it is done
    cancelled = await until_answered(lambda: api.post(f"/orders/{other}/cancel", json=cancel))
    assert cancelled.status_code in (200, 202, 409), cancelled.text
    if cancelled.status_code == 409:
        assert cancelled.json()["detail"] == "the order is already cancelled"
    assert kinds(await eventually(api, other, lambda v: v["status"] == "cancelled")).count("cancelled") == 1
    # the placement repeated: the order recorded during the pause, not a second one
    placed_again = await until_answered(lambda: api.post("/orders", json=body("SW-3")))
    assert (placed_again.status_code, placed_again.json()["order_id"]) == (200, new_id)
    await eventually(api, new_id, lambda v: v["status"] == "pending_payment")

    assert [s for s in stack.statuses if s >= 500 and s != 503] == []


# ------------------------------------------------------------------ the database goes away
async def test_an_unreachable_database_is_503_with_retry_after(
    dev_env: WorkflowEnvironment, postgres_url: str | None
) -> None:
    if postgres_url is None:
        pytest.skip("PostgreSQL is not reachable")
    with relayed(postgres_url) as (url, relay):
        engine = make_engine(url)
        create_schema(engine)
        key, _ = ApiKeyService(engine).create(f"ops-{uuid.uuid4().hex[:6]}@demo", Role.OPERATOR)
        engine.dispose()
        settings = make_settings(
            temporal_address=dev_env.client.service_client.config.target_host,
            database_url=url,
            busy_retry_after=RETRY_AFTER,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as api:
                assert (await api.get("/orders")).status_code == 200

                relay.close()

                for response in (
                    await api.get("/orders"),
                    await api.get("/orders/ord_0123456789abcdef"),
                    await api.post("/orders", json=body("DB-1")),
                ):
                    assert response.status_code == 503, response.text
                    assert response.headers["retry-after"] == "2"
                    assert response.json()["detail"] == "the database is unavailable; retry in 2 s"


# ------------------------------------------------------------------ 202 for a command still under way
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _view(pending: list[PendingCommand]) -> OrderView:
    now = NOW
    return OrderView(
        order_id="ord_0123456789abcdef",
        channel=Channel.SHOPEE,
        channel_order_id="SW-202",
        status=OrderStatus.PAID,
        customer=Customer(name="Lim Wei", email="wei@example.sg"),
        shipping_address=Address(country="SG", city="Singapore", line1="10 Bayfront Ave"),
        lines=[OrderLine(sku="CASE-IP15", quantity=1, unit_price=Decimal("12.50"))],
        total=Decimal("12.50"),
        currency="USD",
        created_at=now,
        updated_at=now,
        pending=pending,
    )


def _pending(command: str) -> PendingCommand:
    return PendingCommand(command=command, accepted_at=NOW, waiting_on="lock stock")


@pytest.mark.parametrize(
    ("answer", "status_code", "source"),
    [
        (Answer(_view([]), command="pay"), 200, "workflow"),
        (Answer(_view([_pending("pay")]), command="pay"), 202, "workflow"),
        # the payment is done; only an operator's hold queued behind it is under way
        (Answer(_view([_pending("hold")]), command="pay"), 200, "workflow"),
        # accepted, but the API stopped waiting before it finished
        (Answer(_view([]), Source.READ_MODEL, command="cancel", unfinished=True), 202, "read-model"),
    ],
)
def test_a_command_still_under_way_is_202_with_the_orders_location(
    answer: Answer, status_code: int, source: str
) -> None:
    response = Response()
    view = respond(answer, response)
    assert view is answer.view
    assert (response.status_code or 200) == status_code
    assert response.headers["x-orderflow-source"] == source
    if status_code == 202:
        assert response.headers["location"] == "/orders/ord_0123456789abcdef"
    else:
        assert "location" not in response.headers
