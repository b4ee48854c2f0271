"""The order tells its shop and Stripe what happened, over real HTTP to fake Shopify and Stripe servers
on 127.0.0.1 that fail the first calls: one fulfilment per parcel, one cancellation, one refund; a
shop that refuses for good is marked unhealthy and the order carries on."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from domain.access import Role
from domain.effects import StockSweep
from domain.models import (
    CancelOrder,
    Channel,
    ConfirmPayment,
    ConfirmShipment,
    OrderLine,
    OrderStatus,
    OrderView,
    PlaceOrder,
    StartOrder,
)
from domain.operator import Action, ActionParams, OperatorAction
from integrations.signing import base64_hmac_sha256
from services.auth import ApiKeyService
from services.db import create_schema, make_engine
from services.inventory import InventoryService
from services.payments import PaymentService
from services.secrets import SecretBox
from services.shops import ShopFields, ShopService
from tests.support.factories import STARTED, eventually, order, settle_and_terminate, start_order
from tests.support.fakes.server import serving
from tests.support.fakes.shopify import FakeShopify
from tests.support.fakes.stripe import FakeStripe
from tests.support.temporal import make_settings, running_worker
from tests.support.warehouses import EVERYWHERE
from worker import start_stock_sync
from workflows.order import OrderWorkflow
from workflows.stock_sync import StockSyncWorkflow, stock_sync_id

Handle = WorkflowHandle[OrderWorkflow, OrderView]
SHOP = "acme-shopify"


@dataclass
class World:
    env: WorkflowEnvironment
    settings: Settings
    engine: Engine
    shopify: FakeShopify
    stripe: FakeStripe
    shops: ShopService


@pytest.fixture
async def world(time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[World]:
    shopify, stripe = FakeShopify(), FakeStripe()
    async with serving(shopify.app()) as shop_url, serving(stripe.app()) as stripe_url:
        settings = make_settings(stripe_api_base=stripe_url)
        assert settings.secret_key is not None
        shops = ShopService(sqlite_engine, SecretBox(settings.secret_key))
        fields = ShopFields(channel=Channel.SHOPIFY, name="Acme", url=shop_url, currency="USD", language="en")
        secrets = {"access_token": shopify.token, "stripe_secret_key": stripe.api_key}
        shops.put(SHOP, fields, dict(secrets))
        inventory = InventoryService(sqlite_engine)
        inventory.set_on_hand("WH-A", "LAMP-1", 10)
        inventory.set_on_hand("WH-B", "BULB-2", 10)
        async with running_worker(time_skipping_env.client, settings, sqlite_engine):
            yield World(time_skipping_env, settings, sqlite_engine, shopify, stripe, shops)
            await settle_and_terminate(time_skipping_env.client)


def shop_order(number: int, lines: list[tuple[str, int, str, str]]) -> PlaceOrder:
    """A Shopify order of shop SHOP: (sku, quantity, price, Shopify line item id) per line."""
    placed = order(channel_order_id=str(number))
    return placed.model_copy(
        update={
            "shop_id": SHOP,
            "lines": [
                OrderLine(sku=sku, quantity=qty, unit_price=Decimal(price), channel_line_id=line_id)
                for sku, qty, price, line_id in lines
            ],
            "total": sum(Decimal(price) * qty for _, qty, price, _ in lines),
        }
    )


def paid_by(placed: PlaceOrder, method: str, payment_id: str) -> ConfirmPayment:
    return ConfirmPayment(payment_id=payment_id, amount=placed.total, currency=placed.currency, method=method)


def fix_token(world: World) -> None:
    """The seller pastes the store's current token with PUT /shops."""
    shop = world.shops.get(SHOP)
    assert shop is not None
    assert shop.url is not None
    fields = ShopFields(channel=Channel.SHOPIFY, name="Acme", url=shop.url, currency="USD", language="en")
    world.shops.put(SHOP, fields, {"access_token": world.shopify.token})


def kinds(view: OrderView, kind: str) -> list[str]:
    return [event.detail for event in view.timeline if event.kind == kind]


async def view_with(handle: Handle, env: WorkflowEnvironment, kind: str) -> OrderView:
    """The order once its background shop call left `kind` on the timeline (time skips retry waits)."""

    async def probe() -> OrderView | None:
        await env.sleep(timedelta(minutes=1))
        view = await handle.query(OrderWorkflow.view)
        return view if kinds(view, kind) else None

    found: OrderView | None = await eventually(probe, tries=60)
    assert found is not None
    return found


async def test_a_split_order_creates_one_fulfilment_per_parcel_although_shopify_fails_at_first(
    world: World,
) -> None:
    remote = world.shopify.add_order(1001, {11: 2, 12: 1})
    world.shopify.faults.fail_first = 2  # the first two calls answer 500
    placed = shop_order(1001, [("LAMP-1", 2, "30.00", "11"), ("BULB-2", 1, "5.00", "12")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Shopify", "shopify:1001"))

    shipped = await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-A-0001", warehouse="WH-A")
    )
    assert shipped.status == OrderStatus.PARTIALLY_SHIPPED  # the shop's answer never holds the order
    view = await view_with(handle, world.env, "shop_fulfilled")
    assert [f["tracking"]["number"] for f in remote.fulfilments] == ["DHL-A-0001"]
    assert remote.fulfilments[0]["items"] == [{"line": "gid://shopify/LineItem/11", "quantity": 2}]
    assert remote.fulfilments[0]["tracking"]["company"] == "DHL"
    assert remote.fulfilments[0]["tracking"]["url"].endswith("tracking-id=DHL-A-0001")
    assert "parcel from WH-A shipped" in kinds(view, "shop_fulfilled")[0]

    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="UPS", tracking_number="1Z999AA10001", warehouse="WH-B")
    )
    await eventually(lambda: len(remote.fulfilments) == 2 or None, tries=100)
    assert [f["tracking"]["number"] for f in remote.fulfilments] == ["DHL-A-0001", "1Z999AA10001"]
    assert remote.fulfilments[1]["items"] == [{"line": "gid://shopify/LineItem/12", "quantity": 1}]
    assert world.shopify.journal.problems == []
    shop = world.shops.get(SHOP)
    assert shop is not None
    assert shop.healthy


async def test_parcels_marked_shipped_under_one_tracking_number_are_one_fulfilment(world: World) -> None:
    remote = world.shopify.add_order(1005, {51: 2, 52: 1})
    placed = shop_order(1005, [("LAMP-1", 2, "30.00", "51"), ("BULB-2", 1, "5.00", "52")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Shopify", "shopify:1005"))

    mark = OperatorAction(
        action=Action.MARK_SHIPPED,
        actor="ops@example.com",
        reason="both parcels went out together",
        params=ActionParams(carrier="UPS", tracking_number="1Z999AA10005"),
    )
    shipped = await handle.execute_update(OrderWorkflow.operate, mark)
    assert shipped.status == OrderStatus.SHIPPED
    await view_with(handle, world.env, "shop_fulfilled")
    (fulfilment,) = remote.fulfilments
    assert fulfilment["tracking"]["number"] == "1Z999AA10005"
    assert sorted((i["line"], i["quantity"]) for i in fulfilment["items"]) == [
        ("gid://shopify/LineItem/51", 2),
        ("gid://shopify/LineItem/52", 1),
    ]


async def test_a_shop_that_refuses_the_token_is_marked_unhealthy_and_the_order_carries_on(
    world: World,
) -> None:
    remote = world.shopify.add_order(1002, {21: 1})
    world.shopify.token = "shpat_revoked_in_the_meantime"  # the shop now answers 401
    placed = shop_order(1002, [("LAMP-1", 1, "30.00", "21")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Shopify", "shopify:1002"))
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-B-0001", warehouse="WH-A")
    )

    view = await view_with(handle, world.env, "shop_call_failed")
    assert view.status == OrderStatus.SHIPPED
    (failed,) = kinds(view, "shop_call_failed")
    assert "credentials are wrong or were revoked" in failed
    assert failed.endswith(
        "Fix the shop (GET /shops/acme-shopify says why; PUT /shops/acme-shopify with new credentials) "
        "and orderflow sends this again by itself (it looks every 5 min for 3 days); or mark order 1002 "
        "fulfilled with DHL DHL-B-0001 on the store by hand"
    )
    shop = world.shops.get(SHOP)
    assert shop is not None
    assert not shop.healthy
    assert shop.last_error is not None
    assert "HTTP 401" in shop.last_error
    assert shop.refused_calls == 1
    assert remote.fulfilments == []

    await world.env.sleep(timedelta(hours=2))  # nobody fixed it yet: nothing is sent
    assert remote.fulfilments == []
    fix_token(world)  # the seller pastes the new token (PUT /shops)
    fixed = await view_with(handle, world.env, "shop_fulfilled")
    (sent,) = kinds(fixed, "shop_fulfilled")
    assert sent.endswith("(sent again once the shop was fixed)")
    assert [f["tracking"]["number"] for f in remote.fulfilments] == ["DHL-B-0001"]
    shop = world.shops.get(SHOP)
    assert shop is not None
    assert shop.healthy


async def test_a_refused_call_whose_shop_is_never_fixed_says_so_after_three_days(world: World) -> None:
    world.shopify.add_order(1011, {111: 1})
    world.shopify.token = "shpat_revoked_in_the_meantime"
    placed = shop_order(1011, [("LAMP-1", 1, "30.00", "111")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Shopify", "shopify:1011"))
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-B-0011", warehouse="WH-A")
    )
    await view_with(handle, world.env, "shop_call_failed")
    await world.env.sleep(timedelta(days=3))

    async def given_up() -> list[str] | None:
        await world.env.sleep(timedelta(minutes=5))
        failed = kinds(await handle.query(OrderWorkflow.view), "shop_call_failed")
        return failed if len(failed) == 2 else None

    failed: list[str] | None = await eventually(given_up, tries=30)
    assert failed is not None
    last = failed[-1]
    assert last == (
        "tell shop acme-shopify the parcel from WH-A shipped was not sent again: the shop was not fixed "
        "within 3 days. Mark order 1011 fulfilled with DHL DHL-B-0011 on the store by hand"
    )
    assert world.shopify.journal.count("POST") < 10  # an unfixed shop is not knocked on every 5 min


async def test_a_store_down_for_hours_is_given_up_on_the_timeline_and_the_order_goes_on(world: World) -> None:
    remote = world.shopify.add_order(1007, {71: 1})
    world.shopify.faults.fail_first = 100_000  # 500 on every call
    placed = shop_order(1007, [("LAMP-1", 1, "30.00", "71")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Shopify", "shopify:1007"))
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-DOWN-001", warehouse="WH-A")
    )
    await world.env.sleep(timedelta(hours=5))
    assert not kinds(await handle.query(OrderWorkflow.view), "shop_call_failed")  # still retrying

    view = await view_with(handle, world.env, "shop_call_failed")
    (failed,) = kinds(view, "shop_call_failed")
    assert "HTTP 500" in failed
    assert "gave up after 5 h" in failed
    assert failed.endswith(
        "once the store answers again, mark order 1007 fulfilled with DHL DHL-DOWN-001 on the store by hand"
    )
    assert view.status == OrderStatus.SHIPPED
    assert remote.fulfilments == []
    assert world.shopify.journal.count("POST") == 20  # one read per attempt, never a write


async def test_cancelling_a_stripe_paid_order_cancels_it_on_the_shop_and_refunds_once(world: World) -> None:
    remote = world.shopify.add_order(1003, {31: 1})
    world.stripe.faults.fail_first = 2  # Stripe answers 500 twice
    world.stripe.faults.lose_responses = (
        1  # then refunds but the answer is lost: the retry must not refund again
    )
    placed = shop_order(1003, [("LAMP-1", 1, "30.00", "31")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Stripe", "pi_3OrderflowTest"))
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed their mind"))

    final = await handle.result()
    assert final.status == OrderStatus.CANCELLED
    assert len(world.stripe.refunds) == 1
    (refund,) = world.stripe.refunds.values()
    assert (refund["payment_intent"], refund["amount"]) == ("pi_3OrderflowTest", 3000)
    (owed,) = PaymentService(world.engine).refunds_for(final.order_id)
    assert refund["metadata"] == {"orderflow_refund_id": owed.refund_id}
    assert owed.status == "succeeded"
    assert remote.cancelled_at is not None
    assert len(kinds(final, "shop_cancelled")) == 1
    assert "Stripe refund re_fake000001: succeeded" in kinds(final, "refund_sent")[0]


async def test_a_cancel_that_came_from_the_store_is_not_sent_back_nor_refunded_by_orderflow(
    world: World,
) -> None:
    remote = world.shopify.add_order(1009, {91: 1})
    placed = shop_order(1009, [("LAMP-1", 1, "30.00", "91")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Stripe", "pi_3OrderflowStoreCancel"))
    cancel = CancelOrder(reason="cancelled on the store", origin="channel")
    await handle.execute_update(OrderWorkflow.cancel, cancel)

    final = await handle.result()
    assert final.status == OrderStatus.CANCELLED
    assert remote.cancelled_at is None
    assert world.stripe.refunds == {}
    assert world.shopify.journal.received == []
    (left,) = kinds(final, "shop_not_called")
    assert left == (
        "cancelled on shop acme-shopify already: nothing sent back to it; the store refunds the buyer itself"
    )
    assert not kinds(final, "shop_cancelled")


async def test_without_a_stripe_key_the_refund_not_sent_is_on_the_timeline(world: World) -> None:
    world.shopify.add_order(1008, {81: 1})
    shop = world.shops.get(SHOP)
    assert shop is not None
    assert shop.url is not None
    fields = ShopFields(channel=Channel.SHOPIFY, name="Acme", url=shop.url, currency="USD", language="en")
    world.shops.put(SHOP, fields, {"stripe_secret_key": None})  # the seller never added the Stripe key
    placed = shop_order(1008, [("LAMP-1", 1, "30.00", "81")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Stripe", "pi_3OrderflowNoKey"))
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed their mind"))

    final = await handle.result()
    (missing,) = kinds(final, "shop_not_updated")
    assert missing.startswith("refund 30.00 USD through Stripe: not sent, shop acme-shopify has no Stripe")
    assert "do this one on the store (or in Stripe) by hand" in missing
    assert world.stripe.refunds == {}
    (owed,) = PaymentService(world.engine).refunds_for(final.order_id)
    assert owed.status == "pending"


async def test_a_refused_refund_is_marked_failed_and_the_order_is_still_cancelled(world: World) -> None:
    world.shopify.add_order(1004, {41: 1})
    world.stripe.api_key = "sk_test_rotated"  # the shop's key no longer works: 401
    placed = shop_order(1004, [("LAMP-1", 1, "30.00", "41")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Stripe", "pi_3OrderflowRefused"))
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="out of stock"))

    final = await handle.result()
    assert final.status == OrderStatus.CANCELLED
    assert world.stripe.refunds == {}
    (owed,) = PaymentService(world.engine).refunds_for(final.order_id)
    assert owed.status == "failed"
    (failed,) = kinds(final, "shop_call_failed")
    assert "refund 30.00 USD through Stripe failed" in failed
    assert "Stripe refused the API key" in failed


async def test_a_refund_stripe_fails_until_the_retries_run_out_ends_failed_with_what_to_do(
    world: World,
) -> None:
    world.shopify.add_order(1010, {101: 1})
    world.stripe.faults.fail_first = 100_000  # Stripe answers 500 for the whole test
    placed = shop_order(1010, [("LAMP-1", 1, "30.00", "101")])
    handle = await start_order(world.env.client, world.settings, placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Stripe", "pi_3OrderflowDown"))
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed their mind"))
    await world.env.sleep(timedelta(hours=5))
    (owed,) = PaymentService(world.engine).refunds_for(handle.id.removeprefix("order-"))
    assert owed.status == "pending"  # still retrying

    final = await handle.result()
    assert final.status == OrderStatus.CANCELLED
    assert world.stripe.refunds == {}
    (owed,) = PaymentService(world.engine).refunds_for(final.order_id)
    assert owed.status == "failed"
    (failed,) = kinds(final, "shop_call_failed")
    assert failed.startswith("refund 30.00 USD through Stripe failed (Stripe: failing on purpose;")
    assert "gave up after 5 h" in failed
    assert "Refund 30.00 USD by hand in Stripe's dashboard (payment pi_3OrderflowDown)" in failed


async def test_a_burst_of_ten_stock_changes_is_one_push_with_the_final_figure(world: World) -> None:
    item, location = "gid://shopify/InventoryItem/501", "gid://shopify/Location/1"
    world.shopify.variants["LAMP-1"] = (item, location)
    world.shopify.stock[(item, location)] = 0
    sync = await world.env.client.start_workflow(
        StockSyncWorkflow.run,
        StockSweep(every=timedelta(seconds=30)),
        id=stock_sync_id(world.settings.task_queue),
        task_queue=world.settings.task_queue,
    )
    try:
        # The first round pushes what changed since the shop was connected (the fixture's 10 lamps).
        await eventually(lambda: sync.query(StockSyncWorkflow.cursors), tries=200)
        assert world.shopify.stock[(item, location)] == 10
        for on_hand in range(11, 21):
            InventoryService(world.engine).set_on_hand("WH-A", "LAMP-1", on_hand)

        await world.env.sleep(timedelta(seconds=31))
        await eventually(lambda: world.shopify.stock[(item, location)] == 20 or None, tries=200)
        calls = len(world.shopify.journal.received)
        await world.env.sleep(timedelta(minutes=2))  # later rounds find nothing new: no call at all
        assert len(world.shopify.journal.received) == calls
        sets = [r for r in world.shopify.journal.received if b"mutation InventorySet" in r.body]
        assert len(sets) == 2  # one per round: the fixture's figure, then the burst's last
        assert world.shopify.stock[(item, location)] == 20
    finally:
        await sync.terminate("test over")


async def test_a_call_still_retrying_when_the_order_continues_as_new_is_named_on_the_timeline(
    world: World,
) -> None:
    world.shopify.add_order(1006, {61: 1})
    world.shopify.faults.fail_first = 100_000  # the store is down for the whole test
    placed = shop_order(1006, [("LAMP-1", 1, "30.00", "61")])
    policy = world.settings.order_policy().model_copy(update={"history_limit": 80})
    handle: Handle = await world.env.client.start_workflow(
        OrderWorkflow.run,
        StartOrder(order_id="ord_shop_can01", order=placed, policy=policy),
        id="order-ord_shop_can01",
        task_queue=world.settings.task_queue,
    )
    STARTED.append(handle)
    await handle.execute_update(OrderWorkflow.placed)
    await handle.execute_update(OrderWorkflow.pay, paid_by(placed, "Shopify", "shopify:1006"))
    await handle.execute_update(
        OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number="DHL-CAN-0001", warehouse="WH-A")
    )
    for number in range(12):  # each note grows the history until the order continues as new
        note = OperatorAction(
            action=Action.NOTE,
            actor="ops@example.com",
            reason="call log",
            params=ActionParams(text=f"{number}"),
        )
        await handle.execute_update(OrderWorkflow.operate, note)
    await world.env.sleep(timedelta(minutes=2))  # the minute it gives calls in flight runs out

    view = await handle.query(OrderWorkflow.view)
    (left,) = kinds(view, "shop_call_failed")
    assert "the parcel from WH-A shipped was still retrying when the order's history was renewed" in left
    assert view.status == OrderStatus.SHIPPED


# ------------------------------------------------------------------ end to end, through the API
SHOPIFY_PAYLOAD = Path(__file__).parents[1] / "integrations" / "payloads" / "shopify" / "orders_create.json"
CLIENT_SECRET = "shpss_client-secret-for-tests"


async def test_a_shopify_order_from_webhook_to_fulfilment_and_stock_pushed_back(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """orders/create -> a reminder -> orders/paid -> stock locked -> shipment -> the fulfilment with its
    tracking number on the fake Shopify -> the new stock level pushed to it."""
    env = time_skipping_env
    url = f"sqlite:///{tmp_path}/orderflow.db"
    engine = make_engine(url)
    create_schema(engine)
    data = json.loads(SHOPIFY_PAYLOAD.read_text())
    shopify = FakeShopify()
    remote = shopify.add_order(
        int(data["id"]), {int(li["id"]): int(li["quantity"]) for li in data["line_items"]}
    )
    item, location = "gid://shopify/InventoryItem/900", "gid://shopify/Location/1"
    shopify.variants["IPOD2008BLACK"] = (item, location)
    shopify.stock[(item, location)] = 20
    settings = make_settings(temporal_address=env.client.service_client.config.target_host, database_url=url)
    app = create_app(settings)
    async with contextlib.AsyncExitStack() as running:
        shop_url = await running.enter_async_context(serving(shopify.app()))
        await running.enter_async_context(app.router.lifespan_context(app))
        await running.enter_async_context(running_worker(env.client, settings, engine))
        key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
        api = await running.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://test",
                headers={"authorization": f"Bearer {key}"},
            )
        )
        assert (await api.put("/warehouses/WH-SZ", json=EVERYWHERE)).status_code == 200
        for sku in ("IPOD2008BLACK", "IPOD2008RED"):
            assert (await api.put(f"/inventory/WH-SZ/{sku}", json={"on_hand": 20})).status_code == 200
        shop = {
            "channel": "shopify",
            "name": "Mugs",
            "url": shop_url,
            "currency": "USD",
            "credentials": {"client_secret": CLIENT_SECRET, "access_token": shopify.token},
        }
        assert (await api.put("/shops/mugs", json=shop)).status_code == 200
        await start_stock_sync(env.client, settings)

        async def webhook(topic: str, body: dict[str, Any], delivery: str) -> str:
            raw = json.dumps(body).encode()
            headers = {
                "content-type": "application/json",
                "x-shopify-topic": topic,
                "x-shopify-webhook-id": delivery,
                "x-shopify-hmac-sha256": base64_hmac_sha256(CLIENT_SECRET, raw),
            }
            request = api.build_request("POST", "/webhooks/shopify/mugs", content=raw, headers=headers)
            del request.headers["authorization"]
            answer = await api.send(request)
            assert answer.status_code == 200, answer.text
            return str(answer.json()["status"])

        assert await webhook("orders/create", data, "e2e-1") == "applied"
        with engine.connect() as conn:
            order_id = conn.execute(text("SELECT order_id FROM order_keys")).scalar_one()
        await env.sleep(timedelta(hours=2))
        unpaid = (await api.get(f"/orders/{order_id}")).json()
        assert (unpaid["status"], unpaid["reminders_sent"]) == ("pending_payment", 1)

        paid = {**data, "financial_status": "paid", "updated_at": "2026-03-04T09:20:00-05:00"}
        assert await webhook("orders/paid", paid, "e2e-2") == "applied"
        assert (await api.get(f"/orders/{order_id}")).json()["status"] == "stock_locked"
        shipment = {"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "warehouse": "WH-SZ"}
        shipped = await api.post(f"/orders/{order_id}/shipment", json=shipment)
        assert shipped.status_code == 200, shipped.text

        async def pushed() -> bool:
            await env.sleep(timedelta(seconds=31))
            return bool(remote.fulfilments) and shopify.stock[(item, location)] == 19

        assert await eventually(pushed, tries=60)
        (fulfilment,) = remote.fulfilments
        assert fulfilment["tracking"]["number"] == "1Z999AA10123456784"
        assert fulfilment["tracking"]["company"] == "UPS"
        assert sorted(i["quantity"] for i in fulfilment["items"]) == [1, 2]
        assert shopify.stock[(item, location)] == 19  # 20 on hand, 1 shipped: what the shop lists now
        assert shopify.journal.problems == []
        await env.client.get_workflow_handle(stock_sync_id(settings.task_queue)).terminate("test over")
        await env.client.get_workflow_handle(f"order-{order_id}").terminate("test over")
