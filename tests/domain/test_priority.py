"""Order priority as a table: value in one reporting currency, VIP, urgency, campaigns; and the
settings that feed it (ORDERS_REPORTING_CURRENCY, ORDERS_FX_RATES, ORDERS_CAMPAIGN_TAGS)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.config import Settings
from domain.models import Customer, PlaceOrder
from domain.priority import PriorityRules, order_priority
from tests.support.factories import order

RELAXED = timedelta(hours=48)
USD = PriorityRules(reporting_currency="USD", fx_rates={"EUR": Decimal("1.08"), "JPY": Decimal("0.0067")})


def priced(amount: str, currency: str, **update: object) -> PlaceOrder:
    return order([("LAMP-1", 1, amount)], currency=currency).model_copy(update=update)


@pytest.mark.parametrize(
    ("amount", "currency", "key", "why"),
    [
        ("1000", "JPY", 4, ["small standard order"]),  # 6.70 USD, not a big order
        ("40000", "JPY", 2, ["order value 40000 JPY (about 268.00 USD)"]),
        ("200000", "JPY", 1, ["order value 200000 JPY (about 1340.00 USD)"]),
        ("190.00", "EUR", 2, ["order value 190.00 EUR (about 205.20 USD)"]),
        ("180.00", "EUR", 3, ["standard order"]),  # 194.40 USD: under the 200 USD threshold
        ("200.00", "USD", 2, ["order value 200.00 USD"]),
        ("49.99", "USD", 4, ["small standard order"]),
        ("1000.00", "USD", 1, ["order value 1000.00 USD"]),
    ],
)
def test_value_counts_in_the_reporting_currency(amount: str, currency: str, key: int, why: list[str]) -> None:
    priority = order_priority(priced(amount, currency), RELAXED, USD)
    assert (priority.key, priority.why, priority.warning) == (key, why, None)


def test_a_currency_without_a_rate_gets_normal_priority_and_says_why() -> None:
    priority = order_priority(priced("99999.00", "GBP"), RELAXED, USD)
    assert priority.key == 3  # neither raised for a value it cannot judge nor lowered as "small"
    assert priority.warning == (
        "no USD exchange rate for GBP in ORDERS_FX_RATES: "
        "the order's value does not count towards its priority"
    )
    assert priority.why == ["standard order", priority.warning]
    # the other rules still count
    vip = priced("99999.00", "GBP", customer=Customer(name="Mei Chen", email="mei@example.com", tier="vip"))
    assert order_priority(vip, RELAXED, USD).key == 1


def test_vip_urgency_and_campaign_add_up() -> None:
    vip = Customer(name="Mei Chen", email="mei@example.com", tier="vip")
    placed = priced("10.00", "USD", customer=vip, campaign="Black-Friday")
    priority = order_priority(placed, timedelta(hours=12), USD)
    assert (priority.key, priority.points) == (1, 4)
    assert priority.why == ["VIP customer", "must ship within 12 h", "campaign Black-Friday"]


def test_campaign_tags_are_the_shops_own() -> None:
    rules = USD.model_copy(update={"campaign_tags": ("summer-sale",)})
    assert order_priority(priced("80.00", "USD", campaign="Summer-Sale"), RELAXED, rules).key == 2
    assert order_priority(priced("80.00", "USD", campaign="black-friday"), RELAXED, rules).key == 3


def test_orders_placed_before_reporting_currencies_keep_their_priority() -> None:
    """Their policy has no rules: thresholds in the order's own currency, as when they were placed."""
    legacy = order_priority(priced("250.00", "EUR"), RELAXED)
    assert (legacy.key, legacy.why) == (2, ["order value 250.00 EUR"])
    assert order_priority(priced("1000", "JPY"), RELAXED).key == 1  # the old rule, for them only


# ------------------------------------------------------------------ settings
def test_priority_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_REPORTING_CURRENCY", "eur")
    monkeypatch.setenv("ORDERS_FX_RATES", '{"USD": "0.93", "jpy": 0.0062}')
    monkeypatch.setenv("ORDERS_CAMPAIGN_TAGS", "Summer-Sale, launch,,")
    monkeypatch.setenv("ORDERS_PRIORITY_HIGH_VALUE", "150")
    rules = Settings().order_policy().priority
    assert rules.reporting_currency == "EUR"
    assert rules.fx_rates == {"USD": Decimal("0.93"), "JPY": Decimal("0.0062")}
    assert all(type(rate) is Decimal for rate in rules.fx_rates.values())
    assert str(rules.fx_rates["JPY"]) == "0.0062"  # parsed as a decimal, never through float
    assert rules.campaign_tags == ("summer-sale", "launch")
    assert (rules.high_value, rules.very_high_value) == (Decimal(150), Decimal(1000))


def test_defaults_judge_in_us_dollars_with_the_usual_campaigns() -> None:
    rules = Settings().order_policy().priority
    assert (rules.reporting_currency, rules.fx_rates) == ("USD", {})
    assert "black-friday" in rules.campaign_tags


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("fx_rates", '{"EUR": 1.08', "exchange rates must be JSON"),
        ("fx_rates", '{"XYZ": "1"}', "'XYZ' is not a supported ISO 4217 currency code"),
        ("fx_rates", '{"EUR": "-1"}', "greater than 0"),
        ("fx_rates", '{"EUR": "lots"}', "decimal"),
        ("reporting_currency", "DOLLARS", "is not a supported ISO 4217 currency code"),
        ("priority_very_high_value", "100", "must not be below ORDERS_PRIORITY_HIGH_VALUE"),
    ],
)
def test_bad_priority_settings_are_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"ORDERS_{name.upper()}", value)
    with pytest.raises(ValidationError, match=message):
        Settings()
