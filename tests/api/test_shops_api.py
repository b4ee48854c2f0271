"""PUT /shops/{shop_id}, GET /shops and GET /shops/{shop_id}: a seller connects stores; no answer, no log
line and no database row ever shows a secret; bad input is a 422 naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from domain.access import Role

SHOPIFY_TOKEN = "shpat_9f8e7d6c5b4a-never-shown"
SHOPIFY_HOOK = "shopify-client-secret-never-shown"
SHOP: dict[str, Any] = {
    "channel": "shopify",
    "name": "Mugs EU",
    "url": "mugs-eu.myshopify.com",
    "currency": "EUR",
    "language": "de",
    "authorized_counts_as_paid": True,
    "stock_buffer": 2,
    "credentials": {"client_secret": SHOPIFY_HOOK, "access_token": SHOPIFY_TOKEN},
}
WOO: dict[str, Any] = {
    "channel": "woocommerce",
    "name": "Teas",
    "url": "https://teas.example/shop/",
    "currency": "GBP",
    "credentials": {"consumer_key": "ck_live_1", "consumer_secret": "cs_live_1", "webhook_secret": "wc-hook"},
}


async def test_a_connected_shop_answers_which_secrets_are_set_never_their_values(
    api: httpx.AsyncClient, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    put = await api.put("/shops/mugs-eu", json=SHOP)
    assert put.status_code == 200, put.text
    shop = put.json()
    assert shop["url"] == "https://mugs-eu.myshopify.com"
    assert shop["authorized_counts_as_paid"] is True
    assert shop["stock_buffer"] == 2
    assert shop["healthy"] is True
    assert shop["credentials"]["access_token"]["set"] is True
    assert shop["credentials"]["access_token"]["changed_at"] is not None
    assert shop["credentials"]["stripe_secret_key"] == {
        "set": False,
        "changed_at": None,
        "previous_valid_until": None,
    }

    listed = await api.get("/shops")
    one = await api.get("/shops/mugs-eu")
    assert [s["shop_id"] for s in listed.json()] == ["mugs-eu"]
    assert one.json() == shop
    with engine.connect() as conn:
        rows = repr(
            [*conn.execute(text("SELECT * FROM shop_secrets")), *conn.execute(text("SELECT * FROM shops"))]
        )
    for seen in (put.text, listed.text, one.text, rows, capsys.readouterr().err):
        assert SHOPIFY_TOKEN not in seen
        assert SHOPIFY_HOOK not in seen


async def test_a_rename_keeps_the_secrets_null_removes_one_and_a_new_webhook_secret_rotates(
    api: httpx.AsyncClient,
) -> None:
    first = (await api.put("/shops/teas", json=WOO)).json()
    renamed = await api.put("/shops/teas", json={**WOO, "name": "Teas & Co", "credentials": {}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Teas & Co"
    assert renamed.json()["credentials"] == first["credentials"]

    changed = (
        await api.put(
            "/shops/teas", json={**WOO, "credentials": {"consumer_key": None, "webhook_secret": "wc-2"}}
        )
    ).json()
    assert changed["credentials"]["consumer_key"]["set"] is False
    assert changed["credentials"]["consumer_secret"] == first["credentials"]["consumer_secret"]
    assert changed["credentials"]["webhook_secret"]["previous_valid_until"] is not None  # 24 h grace


async def test_a_shops_channel_cannot_change(api: httpx.AsyncClient) -> None:
    await api.put("/shops/mugs-eu", json=SHOP)
    moved = await api.put("/shops/mugs-eu", json=WOO)
    assert moved.status_code == 409
    assert "make a new shop" in moved.json()["detail"]


async def test_longest_accepted_values_are_stored(api: httpx.AsyncClient) -> None:
    body = {
        **WOO,
        "name": "N" * 100,
        "url": "https://" + "h" * 239 + ".example",
        "language": "zh-Hant",
        "stripe_account_id": "acct_" + "A" * 100,
        "stock_buffer": 1_000_000,
        "credentials": {"consumer_secret": "s" * 1000, "stripe_webhook_secret": "w" * 1000},
    }
    put = await api.put("/shops/" + "s" * 64, json=body)
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "N" * 100


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "http://teas.example"}, "url"),
        ({"url": "https://" + "h" * 240 + ".example"}, "url"),
        ({"url": "https://teas.example/?ref=1"}, "url"),
        ({"url": "ftp://teas.example"}, "url"),
        ({"channel": "shopify", "url": "https://teas.example", "credentials": {}}, "url"),
        ({"currency": "XYZ"}, "currency"),
        ({"name": ""}, "name"),
        ({"name": "N" * 101}, "name"),
        ({"language": "english"}, "language"),
        ({"channel": "amazon", "credentials": {}}, "channel"),
        ({"channel": "paypal"}, "channel"),
        ({"stock_buffer": -1}, "stock_buffer"),
        ({"stock_buffer": 1_000_001}, "stock_buffer"),
        ({"stripe_account_id": "acct_" + "A" * 101}, "stripe_account_id"),
        ({"credentials": {"access_token": "shpat_1"}}, "credentials.access_token"),
        ({"credentials": {"consumer_key": "k" * 1001}}, "credentials.consumer_key"),
        ({"credentials": {"consumer_key": ""}}, "credentials.consumer_key"),
        ({"credentials": {"password": "x"}}, "credentials.password"),
        ({"credentials": {"webhook_secret": "wc-hook\n"}}, "credentials.webhook_secret"),
        ({"credentials": {"consumer_secret": " cs_live_1"}}, "credentials.consumer_secret"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    refused = await api.put("/shops/teas", json={**WOO, **change})
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == [field]
    assert "k" * 1001 not in refused.text
    assert (await api.get("/shops/teas")).status_code == 404


@pytest.mark.parametrize("shop_id", ["Teas", "-teas", "t" * 65, "teas.shop"])
async def test_a_shop_id_outside_its_pattern_is_a_422(api: httpx.AsyncClient, shop_id: str) -> None:
    refused = await api.put(f"/shops/{shop_id}", json=WOO)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "shop_id"


async def test_viewers_see_shops_but_only_operators_change_them(
    api: httpx.AsyncClient, key_for: Callable[[Role], str]
) -> None:
    await api.put("/shops/teas", json=WOO)
    viewer = {"authorization": key_for(Role.VIEWER)}
    assert (await api.get("/shops/teas", headers=viewer)).status_code == 200
    for role in (Role.VIEWER, Role.INTEGRATION):
        refused = await api.put("/shops/teas", json=WOO, headers={"authorization": key_for(role)})
        assert refused.status_code == 403


async def test_shops_can_be_listed_per_channel(api: httpx.AsyncClient) -> None:
    await api.put("/shops/teas", json=WOO)
    await api.put("/shops/mugs-eu", json=SHOP)
    woo = await api.get("/shops", params={"channel": "woocommerce"})
    assert [s["shop_id"] for s in woo.json()] == ["teas"]
    assert (await api.get("/shops/nobody")).status_code == 404
