"""Pure order rules operators meet: how long an unpaid order may wait, and why an action is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.models import OrderStatus, OrderView
from domain.operator import Action, ActionParams, OperatorAction, action_refusal
from domain.policy import OrderPolicy, payment_hold_for
from tests.services.test_orders_store import make_view

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
STRESS = OrderPolicy(hold_rule="stock_pressure")


# ------------------------------------------------------------------ payment hold
def test_scarce_stock_gets_the_short_hold_whatever_else_is_tight() -> None:
    assert payment_hold_for(STRESS, ["LAMP-1"], ["BULB-2"]) == (
        timedelta(days=3),
        "stock of LAMP-1 is at or under safety stock",
    )


def test_tight_stock_gets_the_standard_hold() -> None:
    assert payment_hold_for(STRESS, [], ["BULB-2", "LAMP-1"]) == (
        timedelta(days=5),
        "stock of BULB-2, LAMP-1 is getting low",
    )


def test_ample_stock_gets_the_long_hold() -> None:
    assert payment_hold_for(STRESS, [], []) == (timedelta(days=7), "stock of every item is ample")


def test_a_fixed_rule_ignores_stock() -> None:
    fixed = OrderPolicy(hold_rule="fixed", payment_hold=timedelta(days=4))
    assert payment_hold_for(fixed, ["LAMP-1"], []) == (timedelta(days=4), "the shop's standard payment hold")


def test_the_shops_own_holds_are_used() -> None:
    shop = OrderPolicy(hold_when_scarce=timedelta(days=4), hold_when_ample=timedelta(days=6))
    assert payment_hold_for(shop, ["LAMP-1"], [])[0] == timedelta(days=4)
    assert payment_hold_for(shop, [], [])[0] == timedelta(days=6)


# ------------------------------------------------------------------ operator actions
def view(status: OrderStatus = OrderStatus.PENDING_PAYMENT, **update: object) -> OrderView:
    return make_view("ord_1", status=status, created_at=NOW - timedelta(hours=2)).model_copy(update=update)


def act(action: Action, **params: object) -> OperatorAction:
    return OperatorAction(
        action=action, actor="lena@ops", reason="checked with the buyer", params=ActionParams(**params)
    )


@pytest.mark.parametrize(
    ("order", "request_", "expected"),
    [
        (view(on_hold=True), act(Action.HOLD), "the order is already on hold"),
        (view(), act(Action.RELEASE), "the order is not on hold"),
        (
            view(OrderStatus.SHIPPED),
            act(Action.CANCEL),
            "the order has already shipped and can no longer be cancelled; open a return instead",
        ),
        (view(OrderStatus.PAID), act(Action.EXTEND_PAYMENT, until=NOW + timedelta(days=1)), "already paid"),
        (
            view(OrderStatus.STOCK_LOCKED, warehouse="WH-SZ"),
            act(Action.REASSIGN_WAREHOUSE, warehouse="WH-SZ"),
            "stock is already locked in WH-SZ",
        ),
        (view(OrderStatus.PAID), act(Action.RETRY), "there is no failed step to retry"),
    ],
)
def test_an_action_the_order_cannot_take_now_says_why(
    order: OrderView, request_: OperatorAction, expected: str
) -> None:
    reason = action_refusal(order, request_, NOW)
    assert reason is not None
    assert expected in reason


def test_a_payment_extension_must_stay_within_seven_days_of_placement_and_ahead() -> None:
    unpaid = view(payment_due_at=NOW + timedelta(days=2))
    too_late = action_refusal(unpaid, act(Action.EXTEND_PAYMENT, until=NOW + timedelta(days=7)), NOW)
    assert too_late is not None
    assert "at the latest (7 days after placement)" in too_late
    earlier = action_refusal(unpaid, act(Action.EXTEND_PAYMENT, until=NOW + timedelta(days=1)), NOW)
    assert earlier is not None
    assert "pick a later time" in earlier
    assert action_refusal(unpaid, act(Action.EXTEND_PAYMENT, until=NOW + timedelta(days=3)), NOW) is None


@pytest.mark.parametrize(
    ("order", "request_"),
    [
        (view(), act(Action.HOLD)),
        (view(on_hold=True), act(Action.RELEASE)),
        (view(OrderStatus.PAID), act(Action.CANCEL)),
        (view(OrderStatus.EXCEPTION, exception_reason="shipment_failed"), act(Action.RETRY)),
        (
            view(OrderStatus.STOCK_LOCKED, warehouse="WH-SZ"),
            act(Action.REASSIGN_WAREHOUSE, warehouse="WH-LA"),
        ),
        (view(OrderStatus.SHIPPED), act(Action.NOTE, text="carrier called")),
    ],
)
def test_an_action_the_order_can_take_is_accepted(order: OrderView, request_: OperatorAction) -> None:
    assert action_refusal(order, request_, NOW) is None
