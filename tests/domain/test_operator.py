"""Operator rules as pure functions: when `resolve-exception` and `customer_message` are accepted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.models import OrderStatus, OrderView, PaymentInfo
from domain.operator import RESTOCK_CURES, Action, ActionParams, OperatorAction, action_refusal
from tests.support.factories import order

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
PAYMENT = PaymentInfo(payment_id="pay_1", amount=Decimal("29.90"), currency="USD", method="card", paid_at=NOW)


def view(**fields: Any) -> OrderView:
    placed = order()
    values: dict[str, Any] = {
        "order_id": "ord_1",
        "channel": placed.channel,
        "channel_order_id": placed.channel_order_id,
        "status": OrderStatus.EXCEPTION,
        "customer": placed.customer,
        "shipping_address": placed.shipping_address,
        "lines": placed.lines,
        "total": placed.total,
        "currency": placed.currency,
        "created_at": NOW,
        "updated_at": NOW,
        "payment": PAYMENT,
        **fields,
    }
    return OrderView(**values)


def request(action: Action, **params: Any) -> OperatorAction:
    return OperatorAction(action=action, actor="lena@ops", reason="checked", params=ActionParams(**params))


WAIT = request(Action.RESOLVE_EXCEPTION, resolution="wait-for-restock")


@pytest.mark.parametrize("reason", RESTOCK_CURES)
def test_wait_for_restock_is_accepted_for_what_stock_arriving_cures(reason: str) -> None:
    assert action_refusal(view(exception_reason=reason), WAIT, NOW) is None


def test_wait_for_restock_is_refused_with_what_to_do_instead() -> None:
    assert action_refusal(view(exception_reason="out_of_stock", waiting_for_restock=True), WAIT, NOW) == (
        "the order is already waiting for restock"
    )
    failed_request = action_refusal(view(exception_reason="request_shipment_failed"), WAIT, NOW)
    assert failed_request is not None
    assert failed_request.startswith("wait-for-restock resolves out_of_stock, unknown_sku, lock_stock_failed")
    assert failed_request.endswith("retry or cancel instead")
    unpaid = action_refusal(view(exception_reason="unknown_sku", payment=None), WAIT, NOW)
    assert unpaid is not None
    assert "add the stock, then retry" in unpaid


def test_words_for_the_buyer_go_only_with_a_cancellation() -> None:
    words = "We could not verify the address."
    assert action_refusal(view(), request(Action.CANCEL, customer_message=words), NOW) is None
    resolve = request(Action.RESOLVE_EXCEPTION, resolution="cancel-and-refund", customer_message=words)
    assert action_refusal(view(exception_reason="out_of_stock"), resolve, NOW) is None
    refused = action_refusal(view(), request(Action.NOTE, text="x", customer_message=words), NOW)
    assert refused == "params.customer_message goes with cancel or resolve-exception cancel-and-refund only"


def test_words_for_the_buyer_are_bounded() -> None:
    with pytest.raises(ValueError, match="500"):
        ActionParams(customer_message="x" * 501)
