"""Stripe events map to payment events with amounts exact by the currency's exponent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.channel_events import (
    ChargeRefunded,
    PaymentFailed,
    PaymentSucceeded,
    from_minor_units,
    to_minor_units,
)
from integrations.errors import PayloadError, UnsupportedTopic
from integrations.payments.stripe.mapping import map_event

PAYLOADS = Path(__file__).parent / "payloads" / "stripe"


def event(name: str, **object_changes: Any) -> bytes:
    data = json.loads((PAYLOADS / f"{name}.json").read_text())
    data["data"]["object"].update(object_changes)
    return json.dumps(data).encode()


def test_succeeded_names_the_store_order_and_the_exact_amount() -> None:
    paid = map_event(event("payment_intent_succeeded"))
    assert isinstance(paid, PaymentSucceeded)
    assert (paid.event_id, paid.payment_intent_id) == (
        "evt_3MtwBwLkdIwHu7ix0snN0B15",
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    )
    assert (paid.reference.shop_id, paid.reference.channel_order_id, paid.reference.order_id) == (
        "woo-berlin",
        "727",
        None,
    )
    assert (paid.amount, paid.currency) == (Decimal("36.35"), "EUR")
    assert paid.occurred_at == datetime.fromtimestamp(1774196883, UTC)


@pytest.mark.parametrize(
    ("currency", "minor", "amount"),
    [
        ("jpy", 3635, Decimal(3635)),
        ("usd", 3635, Decimal("36.35")),
        ("kwd", 3635, Decimal("3.635")),
        ("usd", 1, Decimal("0.01")),
    ],
)
def test_minor_units_convert_by_the_currency_exponent(currency: str, minor: int, amount: Decimal) -> None:
    paid = map_event(
        event("payment_intent_succeeded", currency=currency, amount=minor, amount_received=minor)
    )
    assert isinstance(paid, PaymentSucceeded)
    assert paid.amount == amount
    assert str(paid.amount) == str(amount)
    assert to_minor_units(paid.amount, currency) == minor


def test_an_amount_finer_than_the_currency_cannot_become_minor_units() -> None:
    with pytest.raises(ValueError, match="more than 0 decimal places"):
        to_minor_units(Decimal("10.5"), "JPY")
    assert from_minor_units(105, "JPY") == Decimal(105)


def test_orderflow_order_id_in_metadata_names_the_orderflow_order() -> None:
    failed = map_event(event("payment_intent_payment_failed"))
    assert isinstance(failed, PaymentFailed)
    assert failed.reference.order_id == "ORD-2026-000727"
    assert (failed.code, failed.message) == ("insufficient_funds", "Your card has insufficient funds.")


def test_charge_refunded_names_orderflows_refund_record() -> None:
    refunded = map_event(event("charge_refunded"))
    assert isinstance(refunded, ChargeRefunded)
    assert (refunded.charge_id, refunded.payment_intent_id) == (
        "ch_3MtwBwLkdIwHu7ix0HcJ4JyP",
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    )
    assert (refunded.refunded_total, refunded.currency) == (Decimal("10.00"), "EUR")
    assert refunded.refund_ids == ("re_3MtwBwLkdIwHu7ix0ZmRfY5a",)
    assert refunded.orderflow_refund_ids == ("RF-42",)


def test_a_payment_naming_no_order_is_refused_naming_the_metadata() -> None:
    with pytest.raises(PayloadError) as refused:
        map_event(event("payment_intent_succeeded", metadata={}))
    assert refused.value.field.startswith("data.object.metadata")
    assert "orderflow_order_id" in refused.value.problem


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount_received": 36.35}, "data.object.amount_received"),
        ({"amount_received": "3635"}, "data.object.amount_received"),
        ({"currency": "xyz"}, "data.object.currency"),
    ],
)
def test_unreadable_event_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        map_event(event("payment_intent_succeeded", **changes))
    assert refused.value.field == field


def test_other_event_types_are_not_acted_on() -> None:
    with pytest.raises(UnsupportedTopic, match=r"customer\.created"):
        map_event(json.dumps({"id": "evt_1", "type": "customer.created"}).encode())
