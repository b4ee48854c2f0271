"""The order's deadlines (workflows/deadlines.py): typed, fired in order, shifted by a hold, and
carried across continue-as-new in the shape running orders already carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.policy import OrderPolicy
from workflows.deadlines import PAYMENT_DEADLINES, Deadline, Deadlines, Timer

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def unpaid() -> Deadlines:
    """An unpaid order placed at T0: reminders at 1 h, 24 h, 72 h, auto-cancel at 120 h."""
    deadlines = Deadlines()
    for number, hours in enumerate((1, 24, 72), start=1):
        deadlines.arm(Timer.reminder(number), T0 + hours * H)
    deadlines.arm(Deadline.PAYMENT_TIMEOUT, T0 + 120 * H)
    return deadlines


def test_the_next_deadline_is_the_earliest_and_due_ones_come_in_time_order() -> None:
    deadlines = unpaid()
    assert deadlines.next() == (Timer.reminder(1), T0 + H)
    assert deadlines.due_by(T0 + 30 * H) == [(Timer.reminder(1), T0 + H), (Timer.reminder(2), T0 + 24 * H)]
    assert deadlines.due_by(T0) == []


def test_paying_disarms_every_payment_deadline_and_nothing_else() -> None:
    deadlines = unpaid()
    deadlines.arm(Deadline.RESTOCK_CHECK, T0 + 2 * H)
    deadlines.disarm_kinds(*PAYMENT_DEADLINES)
    assert deadlines.next() == (Timer(Deadline.RESTOCK_CHECK), T0 + 2 * H)
    assert Deadline.PAYMENT_TIMEOUT not in deadlines


def test_equal_deadlines_fire_in_the_order_they_were_armed() -> None:
    deadlines = Deadlines()
    deadlines.arm(Deadline.SHIP_BY, T0)
    deadlines.arm(Deadline.PROJECT, T0)
    deadlines.arm(Deadline.SHIP_BY, T0)  # moving a deadline keeps its place
    assert [timer.kind for timer, _ in deadlines.due_by(T0)] == [Deadline.SHIP_BY, Deadline.PROJECT]
    assert deadlines.next() == (Timer(Deadline.SHIP_BY), T0)


def test_carried_state_keeps_the_names_running_orders_carry() -> None:
    deadlines = unpaid()
    carried = deadlines.carried()
    assert list(carried) == [
        "payment_reminder_1",
        "payment_reminder_2",
        "payment_reminder_3",
        "payment_timeout",
    ]
    restored = Deadlines(carried)
    assert restored.next() == (Timer.reminder(1), T0 + H)
    assert restored.carried() == carried


def test_releasing_a_hold_moves_payment_and_confirmation_on_and_keeps_one_catch_up_reminder() -> None:
    deadlines = unpaid()
    deadlines.arm(Deadline.CONFIRM_BY, T0 + 200 * H)
    # held from T0 + 30 min for 2 days: reminders 1 (1 h) and 2 (24 h) fell due while held
    now = T0 + 48 * H + timedelta(minutes=30)
    deadlines.release_hold(48 * H, now, payment_limit=T0 + 150 * H)
    assert Timer.reminder(1) not in deadlines
    assert deadlines.due_at(Timer.reminder(2)) == T0 + 24 * H  # the one catch-up, sent at once
    assert deadlines.due_at(Timer.reminder(3)) == T0 + 72 * H  # not due yet: unchanged
    assert deadlines.due_at(Deadline.PAYMENT_TIMEOUT) == T0 + 150 * H  # 120 h + 48 h, capped
    assert deadlines.due_at(Deadline.CONFIRM_BY) == T0 + 248 * H


def test_releasing_a_hold_past_the_payment_limit_sends_no_reminder_before_the_cancel() -> None:
    deadlines = unpaid()
    now = T0 + 170 * H
    deadlines.release_hold(170 * H, now, payment_limit=T0 + 168 * H)
    assert deadlines.due_by(now) == [(Timer(Deadline.PAYMENT_TIMEOUT), T0 + 168 * H)]


def test_labels_say_what_each_deadline_does() -> None:
    policy = OrderPolicy()
    assert Timer.reminder(2).label(policy) == "payment reminder 2 of 3 (24 h): offer of help"
    assert Timer(Deadline.PAYMENT_TIMEOUT).label(policy) == "auto-cancel unpaid order"
    assert Timer(Deadline.PROJECT).label(policy) == "write the order to the read model again"
