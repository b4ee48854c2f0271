"""Order input rules a channel integration relies on: totals, currencies, countries, durations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from core.config import Settings
from domain.models import PlaceOrder
from tests.support.factories import order


def test_total_is_exact_decimal_in_the_currency_precision() -> None:
    assert order([("A", 3, "0.10"), ("B", 1, "19.99")]).total == Decimal("20.29")
    assert str(order([("A", 3, "1200")], currency="JPY").total) == "3600"


def test_more_decimals_than_the_currency_has_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"lines\[0\].unit_price"):
        order([("A", 1, "1.5")], currency="JPY")


def test_a_sku_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"lines\[1\].sku"):
        order([("A", 1, "1.00"), ("A", 2, "1.00")])


def test_country_and_currency_are_normalised_and_checked() -> None:
    placed = order(currency="usd")
    assert placed.currency == "USD"
    with pytest.raises(ValidationError, match="ISO 4217"):
        order(currency="ABC")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5d", timedelta(days=5)), ("P4D", timedelta(days=4)), ("96h", timedelta(days=4))],
)
def test_durations_read_from_the_environment(raw: str, expected: timedelta) -> None:
    assert Settings(payment_hold=raw).payment_hold == expected


def test_settings_come_from_orders_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_SHIP_WITHIN", "24h")
    monkeypatch.setenv("ORDERS_TASK_QUEUE", "orders-eu")
    settings = Settings()
    assert (settings.ship_within, settings.task_queue) == (timedelta(hours=24), "orders-eu")


# -------------------------------------------------------------- what stores send (issue 10)
def placed(**changes: Any) -> PlaceOrder:
    """The factory's order as a JSON body, with `changes` on top, validated like POST /orders."""
    body: dict[str, Any] = order([("CASE-IP15", 2, "12.50"), ("USB-C-1M", 1, "4.90")]).model_dump(
        mode="json", exclude_defaults=True
    )
    del body["total"]  # derived from the lines unless a test states it
    return PlaceOrder.model_validate(body | changes)


def lines(*priced: tuple[str, int, str, str | None]) -> list[dict[str, Any]]:
    return [
        {"sku": sku, "quantity": quantity, "unit_price": price, "discounted_unit_price": after}
        for sku, quantity, price, after in priced
    ]


@pytest.mark.parametrize(
    ("changes", "total"),
    [
        # Nothing new: the lines' sum, as every order was totalled before.
        ({}, "29.90"),
        ({"shipping": "4.95"}, "34.85"),
        ({"shipping": "4.95", "tax": "5.68"}, "40.53"),
        # Prices that include the tax: it is shown, never added again.
        ({"shipping": "4.95", "tax": "5.68", "taxes_included": True}, "34.85"),
        ({"discounts": [{"code": "WELCOME10", "amount": "2.99"}, {"amount": "1"}]}, "25.91"),
        # Line discounts lower each line; the subtotal states the discounted lines' sum.
        ({"lines": lines(("CASE-IP15", 2, "12.50", "10.00"), ("USB-C-1M", 1, "4.90", None))}, "24.90"),
        (
            {
                "lines": lines(("CASE-IP15", 2, "12.50", "10.00"), ("USB-C-1M", 1, "4.90", None)),
                "subtotal": "24.90",
                "discounts": [{"code": "SPRING", "amount": "4.90"}],
                "shipping": "5",
                "tax": "3.80",
                "total": "28.80",
            },
            "28.80",
        ),
    ],
)
def test_the_total_is_what_the_buyer_pays(changes: dict[str, Any], total: str) -> None:
    assert str(placed(**changes).total) == total


def test_the_total_has_the_currencys_digits_whatever_was_written() -> None:
    assert str(placed(total="29.9").total) == "29.90"
    assert str(order([("A", 3, "1200")], currency="JPY").total) == "3600"
    kwd = placed(currency="KWD", lines=lines(("A", 1, "1.250", None)), shipping="0.5", total="1.75")
    assert str(kwd.total) == "1.750"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"total": "30.00"}, "total", "which is 29.90 USD"),
        ({"shipping": "4.95", "total": "29.90"}, "total", "which is 34.85 USD"),
        ({"tax": "5", "taxes_included": True, "total": "34.90"}, "total", "which is 29.90 USD"),
        ({"subtotal": "29.00"}, "subtotal", "which is 29.90 USD"),
        (
            {
                "lines": lines(("CASE-IP15", 2, "12.50", "10.00"), ("USB-C-1M", 1, "4.90", None)),
                "subtotal": "29.90",
            },
            "subtotal",
            "which is 24.90 USD",
        ),
        ({"discounts": [{"code": "ALL", "amount": "30"}]}, "discounts", "more than the subtotal 29.90 USD"),
        (
            {"lines": lines(("CASE-IP15", 2, "12.50", "12.51"))},
            "discounted_unit_price",
            "at most the unit price",
        ),
        ({"shipping": "4.955"}, "shipping", r"more decimals than USD allows \(2\)"),
        ({"tax": "0.001"}, "tax", r"more decimals than USD allows \(2\)"),
        ({"discounts": [{"code": "X", "amount": "0.015"}]}, r"discounts\[0\].amount", "more decimals"),
        (
            {"lines": lines(("CASE-IP15", 2, "12.50", "9.999"))},
            r"lines\[0\].discounted_unit_price",
            "decimals",
        ),
        ({"total": "29.901"}, "total", r"more decimals than USD allows \(2\)"),
    ],
)
def test_money_that_does_not_add_up_is_refused_naming_the_field_and_the_right_value(
    changes: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises(ValidationError, match=rf"{field}: .*{expected}"):
        placed(**changes)


def test_amounts_are_never_floats_or_negative() -> None:
    assert isinstance(placed(shipping=4.95).shipping, Decimal)
    assert placed(shipping=4.95).shipping == Decimal("4.95")  # read from the float's text, not its binary
    for field in ("shipping", "tax", "subtotal", "total"):
        with pytest.raises(ValidationError, match=field):
            placed(**{field: "-1"})
    with pytest.raises(ValidationError, match="discounts"):
        placed(discounts=[{"code": "X", "amount": "NaN"}])


def test_orders_recorded_before_the_money_fields_total_and_replay_as_before() -> None:
    """A running order's input from before issue 10 (no shop, no money fields) validates unchanged."""
    old = {
        "channel": "woocommerce",
        "channel_order_id": "1001",
        "customer": {"name": "Ana Souza", "email": "ana@example.com"},
        "shipping_address": {"country": "DE", "city": "Berlin", "line1": "Invalidenstr. 1"},
        "lines": [{"sku": "CASE-IP15", "quantity": 2, "unit_price": "12.50"}],
        "currency": "EUR",
    }
    again = PlaceOrder.model_validate(old)
    assert (again.total, again.shipping, again.tax) == (Decimal("25.00"), Decimal(0), Decimal(0))
    assert again.discounts == []
    assert again.shop_id is None
    assert again.shop == "woocommerce-default"
    # What the workflow stores and reads back (Temporal's JSON) is the same order with the same total.
    assert PlaceOrder.model_validate_json(again.model_dump_json()) == again


def test_an_order_names_its_shop_or_belongs_to_the_channels_default_shop() -> None:
    assert placed(shop_id="eu-store").shop == "eu-store"
    assert placed().shop == "shopify-default"
    for bad in ("EU Store", "s" * 65, "-eu", ""):
        with pytest.raises(ValidationError, match="shop_id"):
            placed(shop_id=bad)


def test_what_stores_send_about_buyer_address_and_lines_is_kept() -> None:
    rich = placed(
        customer={
            "name": "Ana Souza",
            "email": "ana@example.com",
            "channel_customer_id": "gid://shopify/Customer/7",
            "locale": "pt-BR",
        },
        shipping_address={
            "recipient": "Ana Souza",
            "company": "Souza GmbH",
            "phone": "+49 30 1234567",
            "line1": "Invalidenstr. 1",
            "line2": "Hinterhaus, 3. OG",
            "city": "Berlin",
            "province": "BE",
            "postal_code": "10115",
            "country": "de",
        },
        lines=[
            {
                "sku": "CASE-IP15",
                "quantity": 1,
                "unit_price": "12.50",
                "channel_line_id": "\u200b866550311766439020",  # zero-width space pasted in
                "title": "Clear case",
                "variant": "iPhone 15 / Clear",
            }
        ],
    )
    assert rich.customer.locale == "pt-BR"
    assert rich.shipping_address.province == "BE"
    assert rich.shipping_address.country == "DE"
    assert rich.lines[0].channel_line_id == "866550311766439020"
    assert rich.lines[0].variant == "iPhone 15 / Clear"
    assert placed(customer={"name": "A", "email": "a@example.com", "locale": ""}).customer.locale is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"shipping_address": {"country": "DE", "city": "B", "line1": "L", "phone": "1" * 33}}, "phone"),
        (
            {"shipping_address": {"country": "DE", "city": "B", "line1": "L", "province": "P" * 17}},
            "province",
        ),
        ({"shipping_address": {"country": "DE", "city": "B", "line1": "L", "line2": "x" * 201}}, "line2"),
        ({"customer": {"name": "A", "email": "a@example.com", "locale": "english please"}}, "locale"),
        (
            {"customer": {"name": "A", "email": "a@example.com", "channel_customer_id": "c" * 65}},
            "channel_customer_id",
        ),
        ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "1", "title": "t" * 201}]}, "title"),
        ({"discounts": [{"code": "C" * 65, "amount": "1"}]}, "code"),
        ({"discounts": [{"amount": "0.01"}] * 51}, "discounts"),
    ],
)
def test_every_new_value_is_bounded(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        placed(**changes)
