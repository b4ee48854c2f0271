"""The outbound activities against fake Shopify and WooCommerce servers on 127.0.0.1, on SQLite and
PostgreSQL: stock pushed once per burst less each shop's buffer, a refusing shop marked unhealthy
with its pushes kept until it is fixed, fulfilments on WooCommerce, nothing to call without credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.channels import ChannelActivities
from domain.effects import CancelOnShop, CreateFulfilment, ShopLine, StockSweep, StockSwept
from domain.models import Channel
from integrations.channels.woocommerce.client import TRACKING_META
from services.inventory import InventoryService
from services.payments import PaymentService
from services.secrets import SecretBox
from services.shops import ShopFields, ShopService
from tests.support.fakes.server import serving
from tests.support.fakes.shopify import FakeShopify
from tests.support.fakes.woocommerce import FakeWooCommerce
from tests.support.temporal import TEST_SECRET_KEY

ITEM, LOCATION = "gid://shopify/InventoryItem/501", "gid://shopify/Location/1"


@dataclass
class Stores:
    shopify: FakeShopify
    woo: FakeWooCommerce
    shopify_url: str
    woo_url: str
    shops: ShopService
    inventory: InventoryService
    acts: ChannelActivities


@pytest.fixture
async def stores(engine: Engine) -> AsyncIterator[Stores]:
    shopify, woo = FakeShopify(), FakeWooCommerce()
    shopify.variants["LAMP-1"] = (ITEM, LOCATION)
    shopify.stock[(ITEM, LOCATION)] = 0
    woo.products[7] = {"id": 7, "sku": "LAMP-1", "type": "simple", "manage_stock": True, "stock_quantity": 0}
    woo.products[8] = {"id": 8, "sku": "BULB-2", "type": "simple", "manage_stock": True, "stock_quantity": 0}
    shops = ShopService(engine, SecretBox(SecretStr(TEST_SECRET_KEY)))
    inventory = InventoryService(engine)
    async with serving(shopify.app()) as shopify_url, serving(woo.app()) as woo_url:
        acts = ChannelActivities(shops, PaymentService(engine), inventory)
        yield Stores(shopify, woo, shopify_url, woo_url, shops, inventory, acts)


def connect_shopify(stores: Stores, token: str, buffer: int = 0) -> None:
    fields = ShopFields(Channel.SHOPIFY, "Acme", stores.shopify_url, "USD", "en", stock_buffer=buffer)
    stores.shops.put("acme-shopify", fields, {"access_token": token})


def connect_woo(stores: Stores, buffer: int = 0) -> None:
    fields = ShopFields(Channel.WOOCOMMERCE, "Acme Woo", stores.woo_url, "EUR", "de", stock_buffer=buffer)
    stores.shops.put(
        "acme-woo", fields, {"consumer_key": stores.woo.key, "consumer_secret": stores.woo.secret}
    )


async def sweep(stores: Stores, previous: StockSwept | None = None) -> StockSwept:
    """One stock push round, from where the previous one left off."""
    start = StockSweep(cursors=previous.cursors, figures=previous.figures) if previous else StockSweep()
    return await ActivityEnvironment().run(stores.acts.push_stock_changes, start)


async def test_a_burst_of_changes_is_one_push_per_shop_and_sku_with_the_final_figure_less_the_buffer(
    stores: Stores,
) -> None:
    connect_shopify(stores, stores.shopify.token)
    connect_woo(stores, buffer=2)
    for on_hand in range(11, 21):  # ten changes before the round: the last says 20
        stores.inventory.set_on_hand("WH-A", "LAMP-1", on_hand)
    stores.inventory.set_on_hand("WH-A", "BULB-2", 4)

    swept = await sweep(stores)

    assert stores.shopify.stock[(ITEM, LOCATION)] == 20
    assert stores.woo.products[7]["stock_quantity"] == 18  # 20 less the shop's buffer of 2
    assert stores.woo.products[8]["stock_quantity"] == 2
    assert stores.woo.journal.count("PUT", "/products/7") == 1
    assert stores.shopify.journal.count("POST") == 3  # LAMP-1: look up, set; BULB-2: look up
    assert swept.pushed == 3
    assert swept.notes == ["acme-shopify: BULB-2 not pushed: no Shopify variant has the SKU 'BULB-2'"]
    assert set(swept.cursors) == {"acme-shopify", "acme-woo"}

    again = await sweep(stores, swept)
    assert again.pushed == 0  # nothing changed since: nothing written
    assert stores.woo.journal.count("PUT", "/products") == 2
    shop = stores.shops.get("acme-shopify")
    assert shop is not None
    assert shop.healthy


async def test_a_shop_that_refuses_is_unhealthy_and_its_pushes_wait_until_it_is_fixed(stores: Stores) -> None:
    connect_shopify(stores, "shpat_revoked")
    stores.inventory.set_on_hand("WH-A", "LAMP-1", 9)

    swept = await sweep(stores)
    shop = stores.shops.get("acme-shopify")
    assert shop is not None
    assert not shop.healthy
    assert shop.last_error is not None
    assert "HTTP 401" in shop.last_error
    assert "credentials are wrong or were revoked" in shop.last_error
    assert "pushes wait until the shop is fixed" in swept.notes[0]
    assert "acme-shopify" not in swept.cursors
    calls = len(stores.shopify.journal.received)

    # Nothing changed on the shop: the next rounds leave it alone rather than knock every 30 s.
    idle = await sweep(stores, swept)
    assert len(stores.shopify.journal.received) == calls
    assert idle.pushed == 0

    connect_shopify(stores, stores.shopify.token)  # the seller pastes a new token (PUT /shops)
    fixed = await sweep(stores, idle)
    assert fixed.pushed == 1
    assert stores.shopify.stock[(ITEM, LOCATION)] == 9  # the change made while it failed
    shop = stores.shops.get("acme-shopify")
    assert shop is not None
    assert shop.healthy


async def test_a_store_that_fails_for_a_while_gets_the_push_next_round(stores: Stores) -> None:
    connect_woo(stores)
    stores.inventory.set_on_hand("WH-A", "LAMP-1", 6)
    stores.woo.faults.fail_first = 1

    first = await sweep(stores)
    assert first.pushed == 0
    assert "pushed again next round" in first.notes[0]
    second = await sweep(stores, first)
    assert second.pushed == 1
    assert stores.woo.products[7]["stock_quantity"] == 6
    shop = stores.shops.get("acme-woo")
    assert shop is not None
    assert shop.healthy


async def test_the_last_parcel_completes_the_woocommerce_order_with_its_tracking(stores: Stores) -> None:
    connect_woo(stores)
    stores.woo.add_order(4711)
    stores.woo.faults.fail_first = 1
    request = CreateFulfilment(
        order_id="ord_1",
        shop_id="acme-woo",
        channel_order_id="4711",
        parcel="WH-A",
        carrier="DHL",
        tracking_number="JD0146000012345",
        tracking_url="https://www.dhl.com/track?id=JD0146000012345",
        lines=[ShopLine(channel_line_id="1", quantity=2)],
    )
    with pytest.raises(ApplicationError) as failed:  # the 500: retryable, Temporal tries again
        await ActivityEnvironment().run(stores.acts.create_fulfilment, request)
    assert not failed.value.non_retryable
    done = await ActivityEnvironment().run(stores.acts.create_fulfilment, request)
    again = await ActivityEnvironment().run(stores.acts.create_fulfilment, request)

    assert done.done
    assert again.done
    order = stores.woo.orders[4711]
    assert order["status"] == "completed"
    (meta,) = [m for m in order["meta_data"] if m["key"] == TRACKING_META]
    assert [entry["tracking_number"] for entry in meta["value"]] == ["JD0146000012345"]
    assert len(stores.woo.notes[4711]) == 1


async def test_a_shop_without_credentials_has_nothing_to_call(stores: Stores) -> None:
    stores.shops.ensure_default(Channel.SHOPIFY)
    request = CreateFulfilment(
        order_id="ord_2",
        shop_id="shopify-default",
        channel_order_id="1001",
        parcel="WH-A",
        carrier="DHL",
        tracking_number="JD0146000099999",
    )
    call = await ActivityEnvironment().run(stores.acts.create_fulfilment, request)
    assert not call.done
    assert call.detail == "shop shopify-default has no address"
    assert stores.shopify.journal.received == []


async def test_cancelling_an_order_the_store_deleted_is_done_and_keeps_the_shop_healthy(
    stores: Stores,
) -> None:
    connect_woo(stores)
    stores.woo.add_order(4712, status="processing")
    request = CancelOnShop(order_id="ord_3", shop_id="acme-woo", channel_order_id="4712", reason="operator")
    first = await ActivityEnvironment().run(stores.acts.cancel_on_shop, request)
    assert first.detail == "cancelled"
    assert stores.woo.orders[4712]["status"] == "cancelled"

    gone = request.model_copy(update={"channel_order_id": "4799"})  # order.deleted on the store
    call = await ActivityEnvironment().run(stores.acts.cancel_on_shop, gone)
    assert call.detail == "the store no longer has the order: nothing to cancel there"
    shop = stores.shops.get("acme-woo")
    assert shop is not None
    assert shop.healthy


async def test_a_woocommerce_order_refunded_on_the_store_is_not_overwritten_to_cancelled(
    stores: Stores,
) -> None:
    connect_woo(stores)
    stores.woo.add_order(4713, status="refunded")
    request = CancelOnShop(order_id="ord_4", shop_id="acme-woo", channel_order_id="4713", reason="operator")
    call = await ActivityEnvironment().run(stores.acts.cancel_on_shop, request)

    assert call.detail == "was cancelled or refunded on the store already: left as it is"
    assert stores.woo.orders[4713]["status"] == "refunded"
    assert stores.woo.journal.count("PUT") == 0


async def test_rounds_without_a_stock_change_do_not_call_the_shops(stores: Stores) -> None:
    connect_shopify(stores, stores.shopify.token)
    connect_woo(stores)
    stores.inventory.set_on_hand("WH-A", "LAMP-1", 7)
    swept = await sweep(stores)
    assert stores.shopify.stock[(ITEM, LOCATION)] == 7
    assert stores.woo.products[7]["stock_quantity"] == 7
    calls = len(stores.shopify.journal.received), len(stores.woo.journal.received)

    for _ in range(3):  # the change is still within the look-back window: read again, not sent again
        swept = await sweep(stores, swept)
        assert swept.pushed == 0
    assert (len(stores.shopify.journal.received), len(stores.woo.journal.received)) == calls

    stores.inventory.set_on_hand("WH-A", "LAMP-1", 5)  # a new figure goes out at once
    changed = await sweep(stores, swept)
    assert changed.pushed == 2
    assert stores.shopify.stock[(ITEM, LOCATION)] == 5
    assert stores.woo.products[7]["stock_quantity"] == 5
