"""The WooCommerce client against a fake REST API v3 on 127.0.0.1: tracking written once per parcel
whatever the retries, stock by SKU, cancellations once, and a wrong key is a permanent error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from integrations.channels.base import ParcelNotice
from integrations.channels.woocommerce.client import TRACKING_META, WooCommerceClient, tracking_entries
from integrations.errors import PermanentError
from tests.integrations.retrying import with_retries
from tests.support.fakes.server import Faults, serving
from tests.support.fakes.woocommerce import FakeWooCommerce

PARCEL = ParcelNotice(
    "DHL", "00340434161094042557", "https://www.dhl.de/track?piececode=00340434161094042557"
)


@pytest.fixture
async def store() -> AsyncIterator[tuple[FakeWooCommerce, WooCommerceClient]]:
    fake = FakeWooCommerce()
    fake.add_order(727)
    fake.products[93] = {
        "id": 93,
        "sku": "WOO-SINGLE-1",
        "type": "simple",
        "manage_stock": True,
        "stock_quantity": 4,
    }
    fake.products[23] = {
        "id": 23,
        "sku": "SHIP-IDEA/BLACK/M",
        "type": "variation",
        "parent_id": 22,
        "stock_quantity": None,
    }
    async with serving(fake.app()) as url:
        client = WooCommerceClient(url, fake.key, fake.secret)
        yield fake, client
        await client.aclose()


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(Faults(), id="no-failure"),
        pytest.param(Faults(fail_first=3, status=503), id="three-5xx"),
        pytest.param(Faults(lose_responses=1), id="response-lost-after-update"),
        pytest.param(Faults(lose_responses=2), id="update-and-note-responses-lost"),
    ],
)
async def test_shipment_completes_the_order_with_its_tracking_once(
    store: tuple[FakeWooCommerce, WooCommerceClient], faults: Faults
) -> None:
    fake, client = store
    fake.faults = faults
    await with_retries(lambda: client.complete_with_tracking(727, PARCEL))
    await client.complete_with_tracking(727, PARCEL)
    order = fake.orders[727]
    assert order["status"] == "completed"
    assert [entry["tracking_number"] for entry in tracking_entries(order)] == [PARCEL.tracking_number]
    assert [note["note"] for note in fake.notes[727]] == [
        f"Shipped with DHL, tracking number {PARCEL.tracking_number}: {PARCEL.tracking_url}"
    ]
    assert fake.notes[727][0]["customer_note"] is True
    assert fake.journal.problems == []


async def test_split_order_keeps_every_parcel(store: tuple[FakeWooCommerce, WooCommerceClient]) -> None:
    fake, client = store
    await client.complete_with_tracking(727, PARCEL, last_parcel=False)
    assert fake.orders[727]["status"] == "processing"  # not completed while a parcel is still to ship
    await client.complete_with_tracking(727, ParcelNotice("DHL", "00340434161094042558"))
    assert fake.orders[727]["status"] == "completed"
    (meta,) = [m for m in fake.orders[727]["meta_data"] if m["key"] == TRACKING_META]
    assert [entry["tracking_number"] for entry in meta["value"]] == [
        "00340434161094042557",
        "00340434161094042558",
    ]
    assert len(fake.notes[727]) == 2


async def test_stock_is_set_by_sku_on_products_and_variations(
    store: tuple[FakeWooCommerce, WooCommerceClient],
) -> None:
    fake, client = store
    assert (await client.set_stock("WOO-SINGLE-1", 4)).created is False  # already 4: nothing written
    await client.set_stock("WOO-SINGLE-1", 2)
    await client.set_stock("SHIP-IDEA/BLACK/M", 5)
    assert fake.products[93]["stock_quantity"] == 2
    assert (fake.products[23]["stock_quantity"], fake.products[23]["manage_stock"]) == (5, True)
    assert fake.journal.count("PUT", "/products/22/variations/23") == 1
    with pytest.raises(PermanentError, match="no WooCommerce product has the SKU 'NOPE'"):
        await client.set_stock("NOPE", 1)


async def test_cancel_happens_once(store: tuple[FakeWooCommerce, WooCommerceClient]) -> None:
    fake, client = store
    assert (await client.cancel_order(727)).created
    assert (await client.cancel_order(727)).created is False
    assert fake.orders[727]["status"] == "cancelled"
    assert fake.journal.count("PUT") == 1


async def test_wrong_key_is_a_permanent_error(store: tuple[FakeWooCommerce, WooCommerceClient]) -> None:
    fake, _ = store
    async with serving(fake.app()) as url:
        client = WooCommerceClient(url, fake.key, "cs_wrong")
        with pytest.raises(PermanentError) as refused:
            await client.complete_with_tracking(727, PARCEL)
        await client.aclose()
    assert refused.value.status == 401
    assert fake.orders[727]["status"] == "processing"


async def test_unknown_order_is_a_permanent_error(store: tuple[FakeWooCommerce, WooCommerceClient]) -> None:
    _, client = store
    with pytest.raises(PermanentError) as refused:
        await client.cancel_order(999)
    assert refused.value.status == 404
