"""Shops in the database: secrets kept encrypted, left alone when a PUT omits them, removed by null; the
previous webhook secret valid for the grace period; orders placed before shops belong to a default shop."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlmodel import Session

from domain.models import Channel
from services import migrate
from services.db import transaction
from services.secrets import SecretBox
from services.shops import ChannelChange, ShopFields, ShopService
from services.tables import OrderKey, OrderRow, Shop
from tests.support.temporal import TEST_SECRET_KEY

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SHOPIFY = ShopFields(
    channel=Channel.SHOPIFY,
    name="Mugs EU",
    url="https://mugs-eu.myshopify.com",
    currency="EUR",
    language="de",
)
WOO = ShopFields(
    channel=Channel.WOOCOMMERCE, name="Teas", url="https://teas.example", currency="GBP", language="en"
)


@pytest.fixture
def shops(engine: Engine) -> ShopService:
    return ShopService(engine, SecretBox(SecretStr(TEST_SECRET_KEY)), grace=timedelta(hours=24))


def stored(engine: Engine) -> str:
    with engine.connect() as conn:
        return repr(list(conn.execute(text("SELECT * FROM shop_secrets"))))


def test_a_shop_shows_which_secrets_are_set_and_when_never_their_values(
    shops: ShopService, engine: Engine
) -> None:
    view = shops.put("mugs-eu", SHOPIFY, {"client_secret": "hook-1", "access_token": "shpat_abc"}, now=T0)

    assert view.credentials["client_secret"].set
    assert view.credentials["client_secret"].changed_at == T0
    assert view.credentials["access_token"].set
    assert not view.credentials["stripe_secret_key"].set
    assert "hook-1" not in view.model_dump_json()
    assert "shpat_abc" not in view.model_dump_json()
    assert "hook-1" not in stored(engine)
    assert "shpat_abc" not in stored(engine)
    assert shops.secret("mugs-eu", "access_token") == "shpat_abc"


def test_a_put_without_credentials_keeps_them_and_null_removes_one(shops: ShopService) -> None:
    shops.put(
        "teas", WOO, {"consumer_key": "ck_1", "consumer_secret": "cs_1", "webhook_secret": "wh_1"}, now=T0
    )

    renamed = shops.put("teas", replace(WOO, name="Teas & Co"), {}, now=T0 + timedelta(days=1))
    assert renamed.name == "Teas & Co"
    assert renamed.credentials["consumer_key"].changed_at == T0  # untouched
    assert shops.secret("teas", "consumer_secret") == "cs_1"

    removed = shops.put("teas", WOO, {"consumer_secret": None}, now=T0 + timedelta(2))
    assert not removed.credentials["consumer_secret"].set
    assert shops.secret("teas", "consumer_secret") is None
    assert shops.secret("teas", "consumer_key") == "ck_1"


def test_concurrent_first_puts_of_a_shop_both_succeed_and_make_one_shop(shops: ShopService) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        views = list(
            pool.map(lambda n: shops.put("mugs-eu", SHOPIFY, {"access_token": f"t{n}"}, now=T0), range(4))
        )
    assert {view.shop_id for view in views} == {"mugs-eu"}
    assert [shop.shop_id for shop in shops.all()] == ["mugs-eu"]
    assert shops.secret("mugs-eu", "access_token") in {"t0", "t1", "t2", "t3"}


def test_a_shops_channel_cannot_change(shops: ShopService) -> None:
    shops.put("mugs-eu", SHOPIFY, {}, now=T0)
    with pytest.raises(ChannelChange, match="is a shopify shop"):
        shops.put("mugs-eu", WOO, {}, now=T0)
    assert shops.get("mugs-eu").channel == Channel.SHOPIFY  # type: ignore[union-attr]


def test_a_rotated_webhook_secret_keeps_the_previous_one_for_the_grace_period(shops: ShopService) -> None:
    shops.put("mugs-eu", SHOPIFY, {"client_secret": "old-hook"}, now=T0)
    assert shops.webhook_secrets("mugs-eu", now=T0) == ["old-hook"]

    rotated_at = T0 + timedelta(days=3)
    view = shops.put("mugs-eu", SHOPIFY, {"client_secret": "new-hook"}, now=rotated_at)
    assert view.credentials["client_secret"].previous_valid_until == rotated_at + timedelta(hours=24)

    assert shops.webhook_secrets("mugs-eu", now=rotated_at) == ["new-hook", "old-hook"]
    assert shops.webhook_secrets("mugs-eu", now=rotated_at + timedelta(hours=23, minutes=59)) == [
        "new-hook",
        "old-hook",
    ]
    assert shops.webhook_secrets("mugs-eu", now=rotated_at + timedelta(hours=24)) == ["new-hook"]
    later = shops.get("mugs-eu", now=rotated_at + timedelta(days=2))
    assert later is not None
    assert later.credentials["client_secret"].previous_valid_until is None


def test_sending_the_same_webhook_secret_again_rotates_nothing(shops: ShopService) -> None:
    shops.put("mugs-eu", SHOPIFY, {"client_secret": "hook"}, now=T0)
    again = shops.put("mugs-eu", SHOPIFY, {"client_secret": "hook"}, now=T0 + timedelta(hours=1))
    assert again.credentials["client_secret"].changed_at == T0
    assert shops.webhook_secrets("mugs-eu", now=T0 + timedelta(hours=1)) == ["hook"]


def test_each_channel_has_its_webhook_secret_and_the_stripe_one_is_asked_by_name(shops: ShopService) -> None:
    shops.put("teas", WOO, {"webhook_secret": "wc-hook", "stripe_webhook_secret": "whsec_1"}, now=T0)
    assert shops.webhook_secrets("teas", now=T0) == ["wc-hook"]
    assert shops.webhook_secrets("teas", now=T0, name="stripe_webhook_secret") == ["whsec_1"]
    assert shops.webhook_secrets("nobody", now=T0) == []


def test_an_access_token_is_not_a_webhook_secret_and_keeps_no_previous_value(shops: ShopService) -> None:
    shops.put("mugs-eu", SHOPIFY, {"access_token": "shpat_1"}, now=T0)
    view = shops.put("mugs-eu", SHOPIFY, {"access_token": "shpat_2"}, now=T0 + timedelta(hours=1))
    assert view.credentials["access_token"].previous_valid_until is None
    assert shops.secret("mugs-eu", "access_token") == "shpat_2"


def test_a_failing_shop_is_marked_unhealthy_with_its_reason(shops: ShopService) -> None:
    shops.put("mugs-eu", SHOPIFY, {}, now=T0)
    shops.record_failure("mugs-eu", "401 Unauthorized: the access token was revoked", now=T0)
    view = shops.get("mugs-eu")
    assert view is not None
    assert not view.healthy
    assert view.last_error == "401 Unauthorized: the access token was revoked"
    assert view.last_error_at == T0
    assert view.refused_calls == 1
    shops.record_failure("mugs-eu", "401 Unauthorized: the access token was revoked", now=T0)
    assert shops.get("mugs-eu").refused_calls == 2  # type: ignore[union-attr]
    shops.record_success("mugs-eu")
    healthy = shops.get("mugs-eu")
    assert healthy is not None
    assert healthy.healthy
    assert healthy.refused_calls == 2  # what it missed stays readable once fixed
    shops.record_failure("mugs-eu", "404 Not Found", now=T0 + timedelta(days=1))
    assert shops.get("mugs-eu").refused_calls == 1  # type: ignore[union-attr]  # a new outage counts anew


def test_longest_values_fit_their_columns(shops: ShopService) -> None:
    """PostgreSQL enforces the lengths: the longest a PUT accepts is stored."""
    longest = ShopFields(
        channel=Channel.WOOCOMMERCE,
        name="n" * 100,
        url="https://" + "h" * 239 + ".example",
        currency="EUR",
        language="zh-Hant",
        stripe_account_id="acct_" + "a" * 100,
        stock_buffer=1_000_000,
    )
    assert len(longest.url) == 255
    view = shops.put("s" * 64, longest, {"consumer_secret": "x" * 1000}, now=T0)
    assert view.name == "n" * 100
    assert shops.secret("s" * 64, "consumer_secret") == "x" * 1000


def test_new_orders_belong_to_their_channels_default_shop(engine: Engine) -> None:
    with transaction(engine) as session:
        session.add(OrderKey(channel="shopify", channel_order_id="1001", order_id="ord_new"))
        session.add(
            OrderRow(
                order_id="ord_new",
                channel="shopify",
                channel_order_id="1001",
                status="pending_payment",
                country="DE",
                currency="EUR",
                total=Decimal("12.50"),
                created_at=T0,
                updated_at=T0,
                view={},
            )
        )
    with Session(engine) as session:
        assert session.get(OrderRow, "ord_new").shop_id == "shopify-default"  # type: ignore[union-attr]
        key = session.get(OrderKey, ("shopify-default", "shopify", "1001"))  # keyed by shop (0009)
        assert key is not None


# -------------------------------------------------------------- the migration
def test_orders_placed_before_shops_belong_to_a_default_shop_per_channel(fresh: Engine) -> None:
    from alembic import command

    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0006_mail_dispatch")
    with fresh.begin() as conn:
        for order_id, channel in (("ord_1", "shopify"), ("ord_2", "shopify"), ("ord_3", "woocommerce")):
            conn.execute(
                text(
                    "INSERT INTO order_keys (channel, channel_order_id, order_id, created_at) "
                    "VALUES (:channel, :order_id, :order_id, :at)"
                ),
                {"channel": channel, "order_id": order_id, "at": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO orders (order_id, channel, channel_order_id, status, country, currency, "
                    "total, on_hold, priority, created_at, updated_at, version, view) VALUES (:order_id, "
                    ":channel, :order_id, 'paid', 'DE', 'EUR', 10, false, 3, :at, :at, 1, '{}')"
                ),
                {"channel": channel, "order_id": order_id, "at": T0},
            )

    migrate.upgrade(fresh)

    with fresh.connect() as conn:
        orders: dict[str, str] = dict(conn.execute(text("SELECT order_id, shop_id FROM orders")).all())
        keys: dict[str, str] = dict(conn.execute(text("SELECT order_id, shop_id FROM order_keys")).all())
        shops: dict[str, str] = dict(conn.execute(text("SELECT shop_id, channel FROM shops")).all())
    assert orders == {"ord_1": "shopify-default", "ord_2": "shopify-default", "ord_3": "woocommerce-default"}
    assert keys == orders
    assert shops == {"shopify-default": "shopify", "woocommerce-default": "woocommerce"}
    with Session(fresh) as session:
        default = session.get(Shop, "shopify-default")
        assert default is not None
        assert default.name == "Shopify (orders before shops)"
        assert default.healthy
