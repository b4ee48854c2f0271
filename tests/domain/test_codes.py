"""ISO code lists from maintained libraries: the currencies' minor units and what is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.codes import COUNTRIES, CURRENCY_EXPONENTS
from domain.models import Address, ConfirmPayment, minor_digits
from domain.regions import region_of


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("USD", 2),
        ("EUR", 2),
        ("HUF", 2),
        ("IDR", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", None),
    ],
)
def test_each_currency_keeps_its_iso_4217_minor_unit(currency: str, digits: int | None) -> None:
    assert CURRENCY_EXPONENTS.get(currency) == digits
    if digits is not None:
        assert minor_digits(currency) == digits


@pytest.mark.parametrize("code", ["XXX", "XAU", "XTS", "ABC", "EURO", "usd "])
def test_a_code_that_is_no_money_to_price_an_order_in_is_refused(code: str) -> None:
    if code == "usd ":
        assert ConfirmPayment(payment_id="p", amount=1, currency=code, method="card").currency == "USD"
        return
    with pytest.raises(ValidationError, match="ISO 4217"):
        ConfirmPayment(payment_id="p", amount=1, currency=code, method="card")


def test_orders_placed_in_a_withdrawn_currency_still_validate() -> None:
    assert {"BGN", "ANG", "ZWL"} <= CURRENCY_EXPONENTS.keys()


def test_every_country_has_a_shipping_region_and_xk_is_refused() -> None:
    assert {"DE", "CN", "US", "BR", "AQ", "SS"} <= COUNTRIES
    assert all(region_of(code) is not None for code in COUNTRIES)
    with pytest.raises(ValidationError, match="'XK' is not an ISO 3166-1 alpha-2 country code"):
        Address(country="xk", city="Prishtina", line1="Rr. Nënë Tereza 1")
