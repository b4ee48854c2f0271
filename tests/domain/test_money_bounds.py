"""Every amount the edge accepts fits the NUMERIC(16, 4) money columns (PostgreSQL would refuse more)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.models import ConfirmPayment


def payment(amount: str) -> ConfirmPayment:
    return ConfirmPayment.model_validate(
        {"payment_id": "pay-1", "amount": amount, "currency": "USD", "method": "card"}
    )


@pytest.mark.parametrize("amount", ["0", "59.80", "999999999999.99", "0.0001"])
def test_amounts_the_columns_hold_are_accepted(amount: str) -> None:
    assert payment(amount).amount == Decimal(amount)


@pytest.mark.parametrize(
    "amount",
    [
        "1000000000000",  # 13 integer digits: over NUMERIC(16, 4)'s 12
        "99999999999999",  # 14 digits, which the old bound let through
        "1.00001",  # 5 decimal places: the column keeps 4
        "-1",
        "NaN",
    ],
)
def test_amounts_the_columns_cannot_hold_are_refused_naming_the_field(amount: str) -> None:
    with pytest.raises(ValidationError) as refused:
        payment(amount)
    assert refused.value.errors()[0]["loc"] == ("amount",)
