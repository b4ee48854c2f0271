"""POST /webhooks/{shopify,woocommerce,stripe}/...: recorded payloads signed with the shop's secret end in
the state README's mapping tables say; bad signatures are 401 with nothing stored; repeats and
out-of-order deliveries change nothing they should not; the deliveries list says what became of each."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from domain.access import Role
from integrations.payments.stripe.signature import sign as stripe_sign
from integrations.signing import base64_hmac_sha256
from services.auth import ApiKeyService
from services.inbox import InboxService
from services.tables import utcnow
from tests.support.payloads import SHIPMENT
from tests.support.processes import free_port
from tests.support.temporal import make_settings, running_worker
from tests.support.warehouses import EVERYWHERE
from worker import start_inbox_sweeper
from workflows.inbox import inbox_sweeper_id

PAYLOADS = Path(__file__).parents[1] / "integrations" / "payloads"
# A closed port on this machine: the orders these deliveries make try no store on the internet.
NOWHERE = "http://127.0.0.1:9"
SHOPIFY_SECRET = "shpss_client-secret-for-tests"
WOO_SECRET = "wc-webhook-secret-for-tests"
STRIPE_SECRET = "whsec_signing-secret-for-tests"
STRIPE_ACCOUNT = "acct_1BerlinTeas"
SHOPIFY_ORDER = "820982911946154508"


@dataclass
class Stack:
    api: httpx.AsyncClient
    settings: Settings
    engine: Engine
    client: Any

    async def hook(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """A delivery as a store sends it: no API key, the raw body, its headers."""
        request = self.api.build_request("POST", path, content=body, headers=headers)
        del request.headers["authorization"]
        return await self.api.send(request)

    async def shopify(
        self, topic: str, body: bytes, delivery: str, secret: str = SHOPIFY_SECRET
    ) -> httpx.Response:
        headers = {
            "content-type": "application/json",
            "x-shopify-topic": topic,
            "x-shopify-webhook-id": delivery,
            "x-shopify-hmac-sha256": base64_hmac_sha256(secret, body),
        }
        return await self.hook("/webhooks/shopify/mugs", body, headers)

    async def woo(self, topic: str, body: bytes, delivery: str, shop: str = "woo-berlin") -> httpx.Response:
        return await self.hook(f"/webhooks/woocommerce/{shop}", body, woo_headers(topic, body, delivery))

    async def stripe(self, event: bytes) -> httpx.Response:
        headers = {"content-type": "application/json", "stripe-signature": stripe_sign(event, STRIPE_SECRET)}
        return await self.hook(f"/webhooks/stripe/{STRIPE_ACCOUNT}", event, headers)

    def order_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(text("SELECT order_id FROM order_keys ORDER BY shop_id")).scalars())

    def order_count(self) -> int:
        """Orders placed, by their dedupe keys (the read model's list may lag the workflow)."""
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM order_keys")).scalar_one())

    async def order(self) -> dict[str, Any]:
        """The one order placed, as its workflow answers now."""
        assert self.order_count() == 1
        with self.engine.connect() as conn:
            order_id = conn.execute(text("SELECT order_id FROM order_keys")).scalar_one()
        found = await self.api.get(f"/orders/{order_id}")
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        return body

    async def deliveries(self, **query: str) -> dict[str, Any]:
        answer = await self.api.get("/webhooks/deliveries", params=query)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@asynccontextmanager
async def serving(
    dev_env: WorkflowEnvironment, db_url: str, engine: Engine, *, worker: bool = True, **overrides: Any
) -> AsyncIterator[Stack]:
    # These tests read what applying a delivery did from its answer: a busy machine must not turn
    # that answer into "applying" (the test about the answer bound sets its own).
    overrides = {"webhook_answer_within": timedelta(seconds=30), **overrides}
    settings = make_settings(
        temporal_address=dev_env.client.service_client.config.target_host, database_url=db_url, **overrides
    )
    app = create_app(settings)
    async with contextlib.AsyncExitStack() as running:
        await running.enter_async_context(app.router.lifespan_context(app))
        if worker:
            await running.enter_async_context(running_worker(dev_env.client, settings, engine))
        key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as api:
            for code in ("WH-SZ", "WH-LA"):
                assert (await api.put(f"/warehouses/{code}", json=EVERYWHERE)).status_code == 200
            for sku in ("IPOD2008BLACK", "IPOD2008RED", "WOO-SINGLE-1", "SHIP-IDEA/BLACK/M"):
                put = await api.put(f"/inventory/WH-SZ/{sku}", json={"on_hand": 20})
                assert put.status_code == 200, put.text
            shopify = {
                "channel": "shopify",
                "name": "Mugs",
                "url": NOWHERE,  # outbound calls fail fast here: this module is about what comes in
                "currency": "USD",
                "credentials": {"client_secret": SHOPIFY_SECRET, "access_token": "shpat_x"},
            }
            woo = {
                "channel": "woocommerce",
                "name": "Teas Berlin",
                "url": NOWHERE,
                "currency": "EUR",
                "stripe_account_id": STRIPE_ACCOUNT,
                "credentials": {
                    "consumer_key": "ck_1",
                    "consumer_secret": "cs_1",
                    "webhook_secret": WOO_SECRET,
                    "stripe_webhook_secret": STRIPE_SECRET,
                },
            }
            assert (await api.put("/shops/mugs", json=shopify)).status_code == 200
            assert (await api.put("/shops/woo-berlin", json=woo)).status_code == 200
            yield Stack(api, settings, engine, dev_env.client)


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, db_url: str, engine: Engine) -> AsyncIterator[Stack]:
    async with serving(dev_env, db_url, engine) as served:
        yield served


def shopify_order(**changes: Any) -> bytes:
    data = json.loads((PAYLOADS / "shopify" / "orders_create.json").read_text())
    data.update(changes)
    return json.dumps(data).encode()


def woo_order(**changes: Any) -> bytes:
    data = json.loads((PAYLOADS / "woocommerce" / "order_created.json").read_text())
    data.update(changes)
    return json.dumps(data).encode()


def woo_headers(topic: str, body: bytes, delivery: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-delivery-id": delivery,
        "x-wc-webhook-signature": base64_hmac_sha256(WOO_SECRET, body),
    }


async def test_shopify_created_then_paid_waits_for_payment_then_is_paid_the_order_total(stack: Stack) -> None:
    created = await stack.shopify("orders/create", shopify_order(), "d-1")
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "applied"
    order = await stack.order()
    assert order["status"] == "pending_payment"
    assert order["channel_order_id"] == SHOPIFY_ORDER
    assert order["total"] == "429.94"  # what the buyer pays: lines - discount + shipping + tax

    paid = shopify_order(financial_status="paid", updated_at="2026-03-04T09:20:00-05:00")
    answer = await stack.shopify("orders/paid", paid, "d-2")
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] in ("paid", "stock_locked")
    assert order["payment"]["amount"] == "429.94"
    assert order["payment"]["payment_id"] == f"mugs:{SHOPIFY_ORDER}"  # the shop's order: unique per shop

    listed = await stack.deliveries(shop_id="mugs")
    assert [(d["topic"], d["status"]) for d in listed["deliveries"]] == [
        ("orders/paid", "applied"),
        ("orders/create", "applied"),
    ]
    assert all(d["order_id"] == order["order_id"] for d in listed["deliveries"])


async def test_shopify_cancelled_cancels_the_order_naming_the_channel(stack: Stack) -> None:
    await stack.shopify("orders/create", shopify_order(), "d-1")
    cancelled = shopify_order(
        cancelled_at="2026-03-04T10:00:00-05:00",
        cancel_reason="customer",
        updated_at="2026-03-04T10:00:00-05:00",
    )
    answer = await stack.shopify("orders/cancelled", cancelled, "d-2")
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] == "cancelled"
    assert "Shopify" in order["cancel_reason"]


def shopify_refund(amount: str, refund_id: int = 890088186047892319) -> bytes:
    data = json.loads((PAYLOADS / "shopify" / "refunds_create.json").read_text())
    data["id"] = refund_id
    data["transactions"] = [{**data["transactions"][0], "amount": amount}]
    return json.dumps(data).encode()


async def paid_shopify_order(stack: Stack) -> dict[str, Any]:
    paid = shopify_order(financial_status="paid", updated_at="2026-03-04T09:20:00-05:00")
    assert (await stack.shopify("orders/paid", paid, "d-paid")).json()["status"] == "applied"
    return await stack.order()


async def test_a_partial_shopify_refund_is_noted_once_and_the_order_stays_paid(stack: Stack) -> None:
    await paid_shopify_order(stack)
    first = await stack.shopify("refunds/create", shopify_refund("199.40"), "d-refund")
    assert first.json()["status"] == "applied", first.text
    # Shopify sends the same refund again under a new webhook id: noted once.
    again = await stack.shopify("refunds/create", shopify_refund("199.40"), "d-refund-again")
    assert again.json()["status"] == "duplicate", again.text
    order = await stack.order()
    assert order["status"] in ("paid", "stock_locked")
    notes = [e["detail"] for e in order["timeline"] if "890088186047892319" in e["detail"]]
    assert len(notes) == 1, order["timeline"]
    assert "199.40 USD refunded on Shopify" in notes[0]
    assert notes[0].startswith("shopify:")  # the store did it, not an operator


async def test_a_shopify_refund_of_the_whole_total_before_shipment_cancels_the_order(stack: Stack) -> None:
    await paid_shopify_order(stack)
    answer = await stack.shopify("refunds/create", shopify_refund("429.94"), "d-refund")
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] == "cancelled"
    assert "refunded in full on Shopify" in order["cancel_reason"]


async def test_a_shopify_refund_after_shipment_asks_for_the_return(stack: Stack) -> None:
    order = await paid_shopify_order(stack)
    for _ in range(50):  # stock is locked by the workflow right after the payment
        if (await stack.order())["status"] == "stock_locked":
            break
        await asyncio.sleep(0.1)
    shipped = await stack.api.post(f"/orders/{order['order_id']}/shipment", json=SHIPMENT)
    assert shipped.json()["status"] == "shipped", shipped.text
    answer = await stack.shopify("refunds/create", shopify_refund("429.94"), "d-refund")
    assert answer.json()["status"] == "applied", answer.text
    assert "arrange the return" in answer.json()["reason"]
    order = await stack.order()
    assert order["status"] == "shipped"
    assert any("arrange the return with the buyer" in e["detail"] for e in order["timeline"])


async def test_app_uninstalled_marks_the_shop_unhealthy(stack: Stack) -> None:
    body = (PAYLOADS / "shopify" / "app_uninstalled.json").read_bytes()
    answer = await stack.shopify("app/uninstalled", body, "d-u")
    assert answer.json()["status"] == "applied", answer.text
    shop = (await stack.api.get("/shops/mugs")).json()
    assert shop["healthy"] is False
    assert "uninstalled" in shop["last_error"]


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "missing signature", "body altered after signing"],
)
async def test_a_bad_signature_is_401_stores_nothing_and_is_counted_for_the_shop(
    stack: Stack, case: str
) -> None:
    body = shopify_order()
    headers = {
        "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": "d-bad",
        "x-shopify-hmac-sha256": base64_hmac_sha256(SHOPIFY_SECRET, body),
    }
    if case == "wrong secret":
        headers["x-shopify-hmac-sha256"] = base64_hmac_sha256("not-the-secret", body)
    elif case == "missing signature":
        del headers["x-shopify-hmac-sha256"]
    else:
        body = body.replace(b'"429.94"', b'"1.00"')
    answer = await stack.hook("/webhooks/shopify/mugs", body, headers)
    assert answer.status_code == 401, answer.text
    assert SHOPIFY_SECRET not in answer.text
    assert InboxService(stack.engine).count() == 0
    assert stack.order_count() == 0
    listed = await stack.deliveries()
    assert listed["deliveries"] == []
    [rejected] = listed["rejected"]
    assert (rejected["shop_id"], rejected["count"]) == ("mugs", 1)
    assert rejected["last_at"] is not None


def rejected_count(address: str, source: str) -> float:
    """orderflow_webhooks_rejected{source=...} as Prometheus scrapes it from the API (0 when absent)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("orderflow_webhooks_rejected") and f'source="{source}"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_woocommerce_bad_signatures_are_401_counted_and_logged_without_the_secret(
    dev_env: WorkflowEnvironment, db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    async with serving(dev_env, db_url, engine, api_metrics_address=address) as served:
        body = woo_order()
        wrong = woo_headers("order.created", body, "w-bad")
        wrong["x-wc-webhook-signature"] = base64_hmac_sha256("not-the-secret", body)
        missing = woo_headers("order.created", body, "w-bad")
        del missing["x-wc-webhook-signature"]
        for headers in (wrong, missing):
            answer = await served.hook("/webhooks/woocommerce/woo-berlin", body, headers)
            assert answer.status_code == 401, answer.text
            assert WOO_SECRET not in answer.text
        assert InboxService(engine).count() == 0
        assert served.order_count() == 0
        [rejected] = (await served.deliveries())["rejected"]
        assert (rejected["shop_id"], rejected["count"]) == ("woo-berlin", 2)
        for _ in range(50):  # the exporter publishes on its own schedule
            if rejected_count(address, "woocommerce") == 2:
                break
            await asyncio.sleep(0.1)
        assert rejected_count(address, "woocommerce") == 2
    err = capsys.readouterr().err
    refusals = [json.loads(line) for line in err.splitlines() if '"webhook_signature_refused"' in line]
    assert [(r["source"], r["shop_id"]) for r in refusals] == [("woocommerce", "woo-berlin")] * 2
    assert WOO_SECRET not in err


async def test_an_unknown_shop_is_404_and_stores_nothing(stack: Stack) -> None:
    body = shopify_order()
    answer = await stack.hook(
        "/webhooks/shopify/nobody",
        body,
        {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "d", "x-shopify-hmac-sha256": "x"},
    )
    assert answer.status_code == 404
    assert InboxService(stack.engine).count() == 0


async def test_the_same_delivery_five_times_at_once_is_one_order_and_one_payment(stack: Stack) -> None:
    paid = shopify_order(financial_status="paid")
    answers = await asyncio.gather(*(stack.shopify("orders/paid", paid, "same-id") for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sum(not a.json()["duplicate"] for a in answers) == 1
    assert InboxService(stack.engine).count() == 1
    order = await stack.order()  # exactly one order
    assert order["payment"]["amount"] == "429.94"
    assert [e["kind"] for e in order["timeline"]].count("paid") == 1


async def test_paid_before_created_ends_paid_and_the_late_create_is_stale(stack: Stack) -> None:
    paid = shopify_order(financial_status="paid", updated_at="2026-03-04T09:20:00-05:00")
    assert (await stack.shopify("orders/paid", paid, "d-paid")).json()["status"] == "applied"
    late = await stack.shopify("orders/create", shopify_order(), "d-create")
    assert late.json()["status"] == "stale"
    order = await stack.order()
    assert order["status"] in ("paid", "stock_locked")


async def test_an_older_update_after_a_newer_one_changes_nothing(stack: Stack) -> None:
    await stack.shopify("orders/create", shopify_order(), "d-1")
    cancelled = shopify_order(
        cancelled_at="2026-03-04T11:00:00-05:00", updated_at="2026-03-04T11:00:00-05:00"
    )
    assert (await stack.shopify("orders/cancelled", cancelled, "d-3")).json()["status"] == "applied"
    older = shopify_order(financial_status="paid", updated_at="2026-03-04T10:00:00-05:00")
    answer = await stack.shopify("orders/updated", older, "d-2")
    assert answer.json()["status"] == "stale"
    order = await stack.order()
    assert order["status"] == "cancelled"
    assert order["payment"] is None


async def test_woocommerce_ping_is_200_and_changes_nothing(stack: Stack) -> None:
    answer = await stack.hook(
        "/webhooks/woocommerce/woo-berlin",
        b"webhook_id=12",
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ping"
    assert InboxService(stack.engine).count() == 0


async def test_woocommerce_processing_order_is_placed_and_paid(stack: Stack) -> None:
    body = woo_order()
    answer = await stack.hook(
        "/webhooks/woocommerce/woo-berlin", body, woo_headers("order.created", body, "w-1")
    )
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] in ("paid", "stock_locked")
    assert order["payment"]["amount"] == "36.35"
    assert order["shipping_address"]["city"] == "Berlin"


WOO_PENDING = {"status": "pending", "date_paid": None, "date_paid_gmt": None}


async def test_shopify_orders_updated_to_paid_pays_the_order(stack: Stack) -> None:
    assert (await stack.shopify("orders/create", shopify_order(), "d-1")).json()["status"] == "applied"
    paid = shopify_order(financial_status="paid", updated_at="2026-03-04T09:30:00-05:00")
    answer = await stack.shopify("orders/updated", paid, "d-2")
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] in ("paid", "stock_locked")
    assert order["payment"]["payment_id"] == f"mugs:{SHOPIFY_ORDER}"


async def test_woocommerce_on_hold_waits_for_payment(stack: Stack) -> None:
    on_hold = woo_order(**{**WOO_PENDING, "status": "on-hold"})
    assert (await stack.woo("order.created", on_hold, "w-1")).json()["status"] == "applied"
    order = await stack.order()
    assert order["status"] == "pending_payment"
    assert order["payment"] is None


async def test_woocommerce_updated_to_cancelled_cancels_the_order(stack: Stack) -> None:
    assert (await stack.woo("order.created", woo_order(**WOO_PENDING), "w-1")).json()["status"] == "applied"
    cancelled = woo_order(**{**WOO_PENDING, "status": "cancelled"}, date_modified_gmt="2026-03-22T18:00:00")
    answer = await stack.woo("order.updated", cancelled, "w-2")
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] == "cancelled"
    assert "WooCommerce" in order["cancel_reason"]


async def test_woocommerce_order_deleted_cancels_the_order(stack: Stack) -> None:
    assert (await stack.woo("order.created", woo_order(**WOO_PENDING), "w-1")).json()["status"] == "applied"
    deleted = (PAYLOADS / "woocommerce" / "order_deleted.json").read_bytes()
    answer = await stack.woo("order.deleted", deleted, "w-2")
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] == "cancelled"
    assert "deleted on WooCommerce" in order["cancel_reason"]


async def test_a_woocommerce_failed_payment_sent_again_is_noted_once(stack: Stack) -> None:
    assert (await stack.woo("order.created", woo_order(**WOO_PENDING), "w-1")).json()["status"] == "applied"
    failed = woo_order(**{**WOO_PENDING, "status": "failed"}, date_modified_gmt="2026-03-22T18:00:00")
    assert (await stack.woo("order.updated", failed, "w-2")).json()["status"] == "applied"
    again = await stack.woo("order.updated", failed, "w-3")  # the store re-sends it under a new id
    assert again.json()["status"] == "duplicate", again.text
    order = await stack.order()
    assert order["status"] == "pending_payment"
    assert sum("failed (the store's update" in e["detail"] for e in order["timeline"]) == 1


async def test_stripe_payment_pays_the_order_its_metadata_names_exactly(stack: Stack) -> None:
    pending = woo_order(status="pending", date_paid=None, date_paid_gmt=None)
    placed = await stack.hook(
        "/webhooks/woocommerce/woo-berlin", pending, woo_headers("order.created", pending, "w-1")
    )
    assert placed.json()["status"] == "applied", placed.text
    assert (await stack.order())["status"] == "pending_payment"

    event = (PAYLOADS / "stripe" / "payment_intent_succeeded.json").read_bytes()
    headers = {"content-type": "application/json", "stripe-signature": stripe_sign(event, STRIPE_SECRET)}
    answer = await stack.hook(f"/webhooks/stripe/{STRIPE_ACCOUNT}", event, headers)
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["status"] in ("paid", "stock_locked")
    assert order["payment"]["payment_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert order["payment"]["amount"] == "36.35"  # 3635 minor units of EUR


async def test_two_woocommerce_shops_with_the_same_order_number_are_both_paid(stack: Stack) -> None:
    hamburg = {
        "channel": "woocommerce",
        "name": "Teas Hamburg",
        "url": NOWHERE,
        "currency": "EUR",
        "credentials": {"consumer_key": "ck_2", "consumer_secret": "cs_2", "webhook_secret": WOO_SECRET},
    }
    assert (await stack.api.put("/shops/woo-hamburg", json=hamburg)).status_code == 200
    body = woo_order(meta_data=[])  # order #727 in both shops, paid by a gateway other than Stripe
    assert (await stack.woo("order.created", body, "w-1")).json()["status"] == "applied"
    answer = await stack.woo("order.created", body, "w-2", shop="woo-hamburg")
    assert answer.json()["status"] == "applied", answer.text
    payments = []
    for order_id in stack.order_ids():
        order = (await stack.api.get(f"/orders/{order_id}")).json()
        assert order["status"] in ("paid", "stock_locked"), order
        payments.append(order["payment"]["payment_id"])
    assert payments == ["woo-berlin:727", "woo-hamburg:727"]


async def test_a_woocommerce_order_paid_through_stripe_is_paid_by_its_payment_intent(stack: Stack) -> None:
    # The store's Stripe gateway names the PaymentIntent in meta _stripe_intent_id: a cancel refunds it
    # through Stripe, and Stripe's own event for it is the same payment.
    assert (await stack.woo("order.created", woo_order(), "w-1")).json()["status"] == "applied"
    order = await stack.order()
    assert (order["payment"]["payment_id"], order["payment"]["method"]) == (
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "Stripe",
    )
    answer = await stack.stripe(STRIPE_PAID)
    assert answer.json()["status"] == "applied", answer.text
    order = await stack.order()
    assert order["payment"]["payment_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert [e["kind"] for e in order["timeline"]].count("paid") == 1
    assert (await stack.deliveries(status="failed"))["deliveries"] == []


async def test_a_stripe_payment_for_an_order_the_store_reported_paid_is_the_same_payment(
    stack: Stack,
) -> None:
    # The store said `processing` without naming the PaymentIntent: the Stripe event is the same money.
    assert (await stack.woo("order.created", woo_order(meta_data=[]), "w-1")).json()["status"] == "applied"
    answer = await stack.stripe(STRIPE_PAID)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "duplicate", answer.text
    assert (
        answer.json()["reason"]
        == "already paid via the store; Stripe payment pi_3MtwBwLkdIwHu7ix28a3tqPa noted"
    )
    order = await stack.order()
    assert order["payment"]["payment_id"] == "woo-berlin:727"
    assert any("pi_3MtwBwLkdIwHu7ix28a3tqPa" in e["detail"] for e in order["timeline"])
    assert (await stack.deliveries(status="failed"))["deliveries"] == []


async def test_shops_sharing_a_stripe_account_each_get_their_own_payments(stack: Stack) -> None:
    hamburg = {
        "channel": "woocommerce",
        "name": "Teas Hamburg",
        "url": NOWHERE,
        "currency": "EUR",
        "stripe_account_id": STRIPE_ACCOUNT,  # the seller takes both shops' money with one account
        "credentials": {"webhook_secret": WOO_SECRET, "stripe_webhook_secret": STRIPE_SECRET},
    }
    assert (await stack.api.put("/shops/woo-hamburg", json=hamburg)).status_code == 200
    pending = woo_order(status="pending", date_paid=None, date_paid_gmt=None)
    for shop, delivery in (("woo-berlin", "w-1"), ("woo-hamburg", "w-2")):  # order #727 in both
        assert (await stack.woo("order.created", pending, delivery, shop=shop)).json()["status"] == "applied"
    event = json.loads(STRIPE_PAID)
    event["data"]["object"]["metadata"]["shop_id"] = "woo-hamburg"
    answer = await stack.stripe(json.dumps(event).encode())
    assert answer.json()["status"] == "applied", answer.text
    berlin, hamburg_order = [(await stack.api.get(f"/orders/{o}")).json() for o in stack.order_ids()]
    assert berlin["payment"] is None
    assert hamburg_order["payment"]["payment_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    filed = (await stack.deliveries(shop_id="woo-hamburg"))["deliveries"]
    assert [d["topic"] for d in filed] == ["payment_intent.succeeded", "order.created"]


async def test_a_stale_stripe_signature_is_401_and_stores_nothing(stack: Stack) -> None:
    event = (PAYLOADS / "stripe" / "payment_intent_succeeded.json").read_bytes()
    old = int((utcnow() - timedelta(minutes=10)).timestamp())
    headers = {"stripe-signature": stripe_sign(event, STRIPE_SECRET, timestamp=old)}
    answer = await stack.hook(f"/webhooks/stripe/{STRIPE_ACCOUNT}", event, headers)
    assert answer.status_code == 401, answer.text
    assert InboxService(stack.engine).count() == 0
    assert (await stack.deliveries())["rejected"][0]["shop_id"] == "woo-berlin"


async def test_a_failed_delivery_is_listed_with_its_reason_and_replayed_after_the_fix(stack: Stack) -> None:
    body = shopify_order(email=None, customer=None)
    answer = await stack.shopify("orders/create", body, "d-no-mail")
    assert answer.json()["status"] == "failed"
    [failed] = (await stack.deliveries(status="failed"))["deliveries"]
    assert "email" in failed["reason"]
    again = await stack.api.post(f"/webhooks/deliveries/{failed['id']}/replay")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "failed"  # the body is as it was: it fails the same way, and says why
    assert "email" in again.json()["reason"]
    applied = await stack.shopify("orders/create", shopify_order(), "d-with-mail")
    assert applied.json()["status"] == "applied", applied.text
    [entry] = [d for d in (await stack.deliveries())["deliveries"] if d["delivery_id"] == "d-with-mail"]
    refused = await stack.api.post(f"/webhooks/deliveries/{entry['id']}/replay")
    assert refused.status_code == 409, refused.text
    assert "only a failed delivery is replayed" in refused.text
    assert stack.order_count() == 1


async def sweep_until_done(stack: Stack, inbox_id: int) -> dict[str, Any]:
    """Run the inbox sweeper until the delivery leaves `received`; the delivery as the list shows it."""
    inbox = InboxService(stack.engine)
    await start_inbox_sweeper(stack.client, stack.settings)
    try:
        for _ in range(100):
            stored = inbox.get(inbox_id)
            assert stored is not None
            if stored.entry.status not in ("received", "applying"):
                break
            await asyncio.sleep(0.2)
    finally:
        await stack.client.get_workflow_handle(inbox_sweeper_id(stack.settings.task_queue)).terminate()
    entries: list[dict[str, Any]] = (await stack.deliveries())["deliveries"]
    [entry] = [d for d in entries if d["id"] == inbox_id]
    return entry


def age_deliveries(stack: Stack, by: timedelta) -> None:
    """Deliveries received `by` ago: what the sweeper sees once that much time has passed."""
    with stack.engine.begin() as conn:
        conn.execute(text("UPDATE inbox SET received_at = :at"), {"at": utcnow() - by})


STRIPE_PAID = (PAYLOADS / "stripe" / "payment_intent_succeeded.json").read_bytes()


async def test_a_stripe_payment_before_its_order_waits_for_it_and_pays_it_when_it_comes(stack: Stack) -> None:
    early = await stack.stripe(STRIPE_PAID)
    assert early.status_code == 200, early.text
    assert early.json()["status"] == "received"
    assert "waiting for WooCommerce order 727" in early.json()["reason"]
    pending = woo_order(status="pending", date_paid=None, date_paid_gmt=None)
    assert (await stack.woo("order.created", pending, "w-1")).json()["status"] == "applied"
    age_deliveries(stack, timedelta(minutes=2))
    [waiting] = (await stack.deliveries(status="received"))["deliveries"]
    swept = await sweep_until_done(stack, waiting["id"])
    assert swept["status"] == "applied", swept
    order = await stack.order()
    assert order["payment"]["payment_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert order["status"] in ("paid", "stock_locked")


async def test_a_payment_whose_order_never_came_fails_and_a_replay_after_it_came_pays_it(
    stack: Stack,
) -> None:
    assert (await stack.stripe(STRIPE_PAID)).json()["status"] == "received"
    age_deliveries(stack, timedelta(hours=25))  # past the 24 hours a payment waits for its order
    [waiting] = (await stack.deliveries(status="received"))["deliveries"]
    swept = await sweep_until_done(stack, waiting["id"])
    assert swept["status"] == "failed", swept
    assert "did not arrive within 24 hours" in swept["reason"]
    assert "replay" in swept["reason"]
    # The seller fixes the store's webhooks; the order arrives; the operator replays the payment.
    pending = woo_order(status="pending", date_paid=None, date_paid_gmt=None)
    assert (await stack.woo("order.created", pending, "w-1")).json()["status"] == "applied"
    again = await stack.api.post(f"/webhooks/deliveries/{waiting['id']}/replay")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "applied", again.text
    assert (await stack.order())["payment"]["payment_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"


@pytest.mark.parametrize("field", ["customer", "shipping_address", "line_items"])
async def test_a_signed_delivery_with_a_field_of_the_wrong_shape_fails_with_its_reason(
    stack: Stack, field: str
) -> None:
    answer = await stack.shopify("orders/create", shopify_order(**{field: "not an object"}), "d-odd")
    assert answer.status_code == 200, answer.text  # it was received; it cannot be applied
    assert answer.json()["status"] == "failed"
    assert answer.json()["reason"].startswith("body: cannot be read")
    assert stack.order_count() == 0


async def test_a_stripe_event_from_the_far_future_fails_with_its_reason(stack: Stack) -> None:
    event = json.loads(STRIPE_PAID)
    event["created"] = 10**20
    answer = await stack.stripe(json.dumps(event).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "failed"
    assert "cannot be read" in answer.json()["reason"]


async def test_the_sweeper_goes_past_a_delivery_it_cannot_apply(stack: Stack) -> None:
    inbox = InboxService(stack.engine)
    stored = []
    for delivery, body in (("d-odd", shopify_order(customer=[1])), ("d-good", shopify_order())):
        entry, _ = inbox.store(
            source="shopify",
            shop_id="mugs",
            delivery_id=delivery,
            topic="orders/create",
            headers={},
            body=body.decode(),
            now=utcnow() - timedelta(minutes=2),  # the odd one is the oldest: swept first
        )
        stored.append(entry.id)
    good = await sweep_until_done(stack, stored[1])
    assert good["status"] == "applied", good
    odd = inbox.get(stored[0])
    assert odd is not None
    assert odd.entry.status == "failed"
    assert odd.entry.reason is not None
    assert "cannot be read" in odd.entry.reason
    assert (await stack.order())["status"] == "pending_payment"


async def test_a_delivery_stored_while_no_worker_could_take_it_is_applied_by_the_sweeper(
    stack: Stack,
) -> None:
    body = shopify_order()
    inbox = InboxService(stack.engine)
    # As the request leaves it when the order service did not answer: stored, still `received`.
    entry, _ = inbox.store(
        source="shopify",
        shop_id="mugs",
        delivery_id="d-late",
        topic="orders/create",
        headers={},
        body=body.decode(),
        now=utcnow() - timedelta(minutes=2),
    )
    await start_inbox_sweeper(stack.client, stack.settings)
    try:
        for _ in range(100):
            stored = inbox.get(entry.id)
            assert stored is not None
            if stored.entry.status not in ("received", "applying"):
                break
            await asyncio.sleep(0.2)
        assert stored is not None
        assert stored.entry.status == "applied", stored.entry
        assert (await stack.order())["status"] == "pending_payment"
    finally:
        await stack.client.get_workflow_handle(inbox_sweeper_id(stack.settings.task_queue)).terminate()


async def test_a_body_over_the_limit_is_refused_before_it_is_stored(stack: Stack) -> None:
    body = b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = await stack.shopify("orders/create", body, "d-big")
    assert answer.status_code == 413
    assert InboxService(stack.engine).count() == 0


async def test_a_delivery_that_came_while_no_worker_ran_is_stored_answered_and_applied_later(
    dev_env: WorkflowEnvironment, db_url: str, engine: Engine
) -> None:
    async with serving(
        dev_env, db_url, engine, worker=False, workflow_answer_timeout=timedelta(seconds=1)
    ) as down:
        answer = await down.shopify("orders/create", shopify_order(), "d-while-down")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "received"
        assert "retried automatically" in answer.json()["reason"]
        inbox = InboxService(engine)
        [entry] = inbox.list()
        # The worker comes back; the sweeper takes deliveries older than its settling time.
        with engine.begin() as conn:
            conn.execute(text("UPDATE inbox SET received_at = :at"), {"at": utcnow() - timedelta(minutes=2)})
        async with running_worker(dev_env.client, down.settings, engine):
            await start_inbox_sweeper(down.client, down.settings)
            try:
                for _ in range(100):
                    stored = inbox.get(entry.id)
                    assert stored is not None
                    if stored.entry.status not in ("received", "applying"):
                        break
                    await asyncio.sleep(0.2)
                assert stored is not None
                assert stored.entry.status == "applied", stored.entry
                assert (await down.order())["status"] == "pending_payment"
            finally:
                await down.client.get_workflow_handle(inbox_sweeper_id(down.settings.task_queue)).terminate()


async def test_stripe_charge_refunded_settles_the_refund_orderflow_made(stack: Stack) -> None:
    with stack.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO refunds (refund_id, order_id, payment_id, amount, currency, reason, status, "
                "created_at) VALUES ('RF-42', 'ord_1', 'pi_1', 10, 'EUR', 'damaged', 'pending', :at)"
            ),
            {"at": utcnow()},
        )
    event = (PAYLOADS / "stripe" / "charge_refunded.json").read_bytes()
    headers = {"stripe-signature": stripe_sign(event, STRIPE_SECRET)}
    answer = await stack.hook(f"/webhooks/stripe/{STRIPE_ACCOUNT}", event, headers)
    assert answer.json()["status"] == "applied", answer.text
    with stack.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM refunds WHERE refund_id = 'RF-42'")).scalar_one()
    assert status == "succeeded"


async def test_a_slow_order_service_does_not_hold_the_stores_answer(
    dev_env: WorkflowEnvironment, db_url: str, engine: Engine
) -> None:
    async with serving(
        dev_env,
        db_url,
        engine,
        worker=False,
        workflow_answer_timeout=timedelta(seconds=20),
        webhook_answer_within=timedelta(milliseconds=500),
    ) as slow:
        started = asyncio.get_running_loop().time()
        answer = await slow.shopify("orders/create", shopify_order(), "d-slow")
        assert asyncio.get_running_loop().time() - started < 3  # stores redeliver after about 5 s
        assert answer.json()["status"] == "applying", answer.text
        # The worker comes back while the request's applying still waits: it finishes, no redelivery.
        inbox = InboxService(engine)
        async with running_worker(dev_env.client, slow.settings, engine):
            for _ in range(100):
                [entry] = inbox.list()
                if entry.status not in ("received", "applying"):
                    break
                await asyncio.sleep(0.2)
            assert entry.status == "applied", entry
