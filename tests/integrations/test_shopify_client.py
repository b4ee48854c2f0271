"""The Shopify client against a fake GraphQL Admin API on 127.0.0.1: one fulfilment per parcel whatever
the retries, compare-and-set stock, cancellations once, and errors sorted into permanent and retryable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from integrations.channels.base import ParcelNotice
from integrations.channels.shopify.client import ShopifyClient
from integrations.errors import PermanentError, RetryableError
from tests.integrations.retrying import with_retries
from tests.support.fakes.server import Faults, serving
from tests.support.fakes.shopify import FakeShopify

PARCEL = ParcelNotice(
    "DHL Express", "JD014600006281234567", "https://www.dhl.com/track?id=JD014600006281234567"
)


@pytest.fixture
async def shop() -> AsyncIterator[tuple[FakeShopify, ShopifyClient]]:
    fake = FakeShopify()
    fake.add_order(820982911946154508, {866550311766439020: 1, 141249953214522974: 2})
    async with serving(fake.app()) as url:
        client = ShopifyClient(url, fake.token)
        yield fake, client
        await client.aclose()


async def test_fulfilment_carries_the_tracking_number(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    fake, client = shop
    outcome = await client.create_fulfilment(820982911946154508, PARCEL)
    assert outcome.created
    (fulfilment,) = fake.orders["gid://shopify/Order/820982911946154508"].fulfilments
    assert fulfilment["tracking"] == {
        "company": "DHL Express",
        "number": PARCEL.tracking_number,
        "url": PARCEL.tracking_url,
    }
    assert sum(item["quantity"] for item in fulfilment["items"]) == 3
    assert fake.journal.problems == []


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(Faults(fail_first=2, status=500), id="two-5xx"),
        pytest.param(Faults(fail_first=1, status=429, retry_after="2"), id="throttled"),
        pytest.param(Faults(lose_responses=1), id="response-lost-after-create"),
    ],
)
async def test_retries_make_exactly_one_fulfilment(
    shop: tuple[FakeShopify, ShopifyClient], faults: Faults
) -> None:
    fake, client = shop
    fake.faults = faults
    outcome, failures = await with_retries(lambda: client.create_fulfilment(820982911946154508, PARCEL))
    assert failures, "the fake failed on purpose: at least one retry"
    assert len(fake.orders["gid://shopify/Order/820982911946154508"].fulfilments) == 1
    again = await client.create_fulfilment(820982911946154508, PARCEL)
    assert (again.created, again.id) == (False, outcome.id)
    assert len(fake.orders["gid://shopify/Order/820982911946154508"].fulfilments) == 1


async def test_retry_after_is_honoured(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    fake, client = shop
    fake.faults = Faults(fail_first=1, status=429, retry_after="7")
    with pytest.raises(RetryableError) as throttled:
        await client.create_fulfilment(820982911946154508, PARCEL)
    assert (throttled.value.status, throttled.value.retry_after) == (429, 7.0)


async def test_split_order_makes_one_fulfilment_per_parcel(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    fake, client = shop
    first = ParcelNotice("UPS", "1Z999AA10123456784", lines=(("866550311766439020", 1),))
    second = ParcelNotice("UPS", "1Z999AA10123456785", lines=(("141249953214522974", 2),))
    await client.create_fulfilment(820982911946154508, first)
    await client.create_fulfilment(820982911946154508, second)
    await client.create_fulfilment(820982911946154508, first)
    numbers = [
        f["tracking"]["number"] for f in fake.orders["gid://shopify/Order/820982911946154508"].fulfilments
    ]
    assert numbers == ["1Z999AA10123456784", "1Z999AA10123456785"]
    with pytest.raises(PermanentError, match="nothing left to fulfil"):
        await client.create_fulfilment(820982911946154508, ParcelNotice("UPS", "1Z999AA10123456786"))


async def test_wrong_token_is_a_permanent_error(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    fake, _ = shop
    async with serving(fake.app()) as url:
        client = ShopifyClient(url, "shpat_revoked")
        with pytest.raises(PermanentError) as refused:
            await client.create_fulfilment(820982911946154508, PARCEL)
        await client.aclose()
    assert refused.value.status == 401
    assert "credentials" in str(refused.value)
    assert fake.orders["gid://shopify/Order/820982911946154508"].fulfilments == []


async def test_unknown_order_is_permanent(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    _, client = shop
    with pytest.raises(PermanentError, match="not found"):
        await client.create_fulfilment(1, PARCEL)


async def test_unreachable_shop_is_retryable() -> None:
    client = ShopifyClient("http://127.0.0.1:9", "shpat_x")
    with pytest.raises(RetryableError, match="could not connect"):
        await client.create_fulfilment(1, PARCEL)
    await client.aclose()


async def test_cancel_happens_once(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    fake, client = shop
    fake.faults = Faults(lose_responses=1)
    _, failures = await with_retries(lambda: client.cancel_order(820982911946154508, reason="INVENTORY"))
    assert len(failures) == 1
    assert fake.orders["gid://shopify/Order/820982911946154508"].cancelled_at is not None
    # read, cancel (its answer lost), read again: already cancelled, so no second orderCancel
    sent = [b"mutation OrderCancel" in item.body for item in fake.journal.received]
    assert sent == [False, True, False]
    assert fake.journal.problems == []


ITEM, LOCATION = "30322695", "124656943"


async def test_stock_is_set_by_compare_and_set(shop: tuple[FakeShopify, ShopifyClient]) -> None:
    fake, client = shop
    key = (f"gid://shopify/InventoryItem/{ITEM}", f"gid://shopify/Location/{LOCATION}")
    fake.stock[key] = 10
    assert await client.set_available(ITEM, LOCATION, 7, compare_quantity=10, reference="SKU-1:v2") == 10
    assert fake.stock[key] == 7


async def test_a_sale_in_between_is_read_and_the_set_retried_once(
    shop: tuple[FakeShopify, ShopifyClient],
) -> None:
    fake, client = shop
    key = (f"gid://shopify/InventoryItem/{ITEM}", f"gid://shopify/Location/{LOCATION}")
    fake.stock[key] = 9  # the shop sold one since orderflow last looked (it thinks 10)
    assert await client.set_available(ITEM, LOCATION, 7, compare_quantity=10, reference="SKU-1:v3") == 9
    assert fake.stock[key] == 7
    assert fake.journal.count("POST") == 3


async def test_a_shop_that_never_answers_is_retryable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # takes the request, never answers
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = ShopifyClient(f"http://127.0.0.1:{port}", "shpat_x", http=httpx.AsyncClient(timeout=0.3))
    try:
        with pytest.raises(RetryableError, match="timed out"):
            await client.create_fulfilment(1, PARCEL)
    finally:
        await client.aclose()
        server.close()
