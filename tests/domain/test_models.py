"""Order input rules a channel integration relies on: totals, currencies, countries, durations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.config import Settings
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
