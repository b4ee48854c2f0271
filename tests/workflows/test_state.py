"""The order's live state (workflows/state.py): what a running order carried across continue-as-new
comes back whole, is carried on in the same shape, and the view shows it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.models import OrderState, OrderStatus, StartOrder
from workflows.deadlines import Deadline, Timer
from workflows.state import LiveOrder

HISTORIES = Path(__file__).parent.parent / "histories"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def recorded_start(name: str) -> StartOrder:
    """The input a recorded run started with: for a later run, the state the one before carried."""
    document = json.loads((HISTORIES / f"{name}.json").read_text(encoding="utf-8"))
    started = document["history"]["events"][0]["workflowExecutionStartedEventAttributes"]
    return StartOrder.model_validate_json(base64.b64decode(started["input"]["payloads"][0]["data"]))


@pytest.mark.parametrize("run", ["continue_as_new_run2", "continue_as_new_run3", "continue_as_new"])
def test_state_a_running_order_carried_is_carried_on_unchanged(run: str) -> None:
    start = recorded_start(run)
    carried = start.carried
    assert carried is not None
    live = LiveOrder.start(start, NOW)
    again = live.carry(carried.notifications)
    assert again == carried.model_copy(update={"runs": carried.runs + 1})


def test_the_view_shows_the_carried_order() -> None:
    start = recorded_start("continue_as_new_run2")
    assert start.carried is not None
    live = LiveOrder.start(start, NOW)
    view = live.view(pending=[], waiting_on=None, waiting_since=None)
    assert view.order_id == start.order_id
    assert view.status == start.carried.status == OrderStatus.PENDING_PAYMENT
    assert view.timeline == start.carried.timeline
    assert view.payment_due_at == start.carried.payment_due_at
    assert view.on_hold == (start.carried.held_since is not None)
    assert [e.kind for e in view.timeline][:1] == ["placed"]


def test_deadlines_come_back_typed_from_the_names_running_orders_carry() -> None:
    carried = OrderState(
        status=OrderStatus.PENDING_PAYMENT,
        created_at=NOW,
        updated_at=NOW,
        status_since=NOW,
        timeline=[],
        timers={"payment_reminder_2": NOW, "payment_timeout": NOW.replace(hour=18)},
    )
    start = recorded_start("continue_as_new_run2").model_copy(update={"carried": carried})
    live = LiveOrder.start(start, NOW)
    assert live.deadlines.next() == (Timer.reminder(2), NOW)
    assert live.deadlines.due_at(Deadline.PAYMENT_TIMEOUT) == NOW.replace(hour=18)
    assert live.carry([]).timers == carried.timers


def test_a_new_order_starts_pending_payment_now() -> None:
    start = recorded_start("happy_path")
    live = LiveOrder.start(start, NOW)
    assert (live.status, live.created_at, live.status_since) == (OrderStatus.PENDING_PAYMENT, NOW, NOW)
    assert live.carry([]).runs == 2
