"""Money rules of an order: what the buyer pays, from its lines, discounts, shipping and tax.

Pure functions over Decimal (never a float), exact in the currency's minor units (ISO 4217's
exponents, domain.codes). The order model (domain.models.PlaceOrder) applies them to what a channel
sends; they raise ValueError naming the field and the value it should have had, which the API returns
as a 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from domain.codes import CURRENCY_EXPONENTS


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: 0.01 USD, 1 JPY, 0.001 KWD."""
    return Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency])


def excess_decimals(value: Decimal, currency: str) -> str | None:
    """Why `value` cannot be an amount of `currency` (finer than its minor unit), or None."""
    digits = CURRENCY_EXPONENTS[currency]
    if value != value.quantize(minor_unit(currency)):
        return f"{value} has more decimals than {currency} allows ({digits})"
    return None


def in_currency(value: Decimal, currency: str) -> Decimal:
    """`value` written with exactly the currency's minor digits: 20.3 USD -> 20.30, 3600 JPY -> 3600."""
    return value.quantize(minor_unit(currency))


@dataclass(frozen=True)
class Totals:
    """An order's money as the channel states it; None where it stated nothing (derived instead)."""

    currency: str
    lines: tuple[tuple[Decimal, int], ...]  # (price per unit after discount, quantity) per line
    discounts: tuple[Decimal, ...] = ()
    shipping: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    taxes_included: bool = False
    subtotal: Decimal | None = None
    total: Decimal | None = None


def lines_subtotal(lines: Iterable[tuple[Decimal, int]], currency: str) -> Decimal:
    """The sum of each line's price after discount times its quantity."""
    return in_currency(sum((price * quantity for price, quantity in lines), Decimal(0)), currency)


def buyer_pays(totals: Totals) -> Decimal:
    """What the buyer pays: subtotal - discounts + shipping + tax (tax only when prices exclude it).
    With nothing but lines this is the sum of the lines, as orders were totalled before."""
    subtotal = lines_subtotal(totals.lines, totals.currency)
    tax = Decimal(0) if totals.taxes_included else totals.tax
    return in_currency(subtotal - sum(totals.discounts, Decimal(0)) + totals.shipping + tax, totals.currency)


def checked_total(totals: Totals) -> Decimal:
    """The order's total, after checking what the channel stated against its lines and charges.

    Raises ValueError "<field>: ..." naming the field that disagrees and the value it should have."""
    currency = totals.currency
    subtotal = lines_subtotal(totals.lines, currency)
    if totals.subtotal is not None and totals.subtotal != subtotal:
        raise ValueError(
            f"subtotal: {totals.subtotal} {currency} is not the sum of the lines' prices after discount "
            f"times their quantities, which is {subtotal} {currency}"
        )
    discounts = sum(totals.discounts, Decimal(0))
    if discounts > subtotal:
        raise ValueError(
            f"discounts: {in_currency(discounts, currency)} {currency} in all is more than the subtotal "
            f"{subtotal} {currency}"
        )
    expected = buyer_pays(totals)
    if totals.total is not None and totals.total != expected:
        shown = in_currency(totals.tax, currency)
        tax = f"tax {shown} included in the prices" if totals.taxes_included else f"+ tax {shown}"
        raise ValueError(
            f"total: {totals.total} {currency} is not what the buyer pays, which is {expected} {currency} "
            f"(subtotal {subtotal} - discounts {in_currency(discounts, currency)} + shipping "
            f"{in_currency(totals.shipping, currency)} {tax})"
        )
    return expected
