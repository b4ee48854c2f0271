"""What orderflow says to buyers and operators, on the real time-skipping server: the cancellation
mail never carries the internal reason, and timeline texts read as people write durations and times."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.humanize import moment
from domain.models import CancelOrder, OrderStatus, OrderView
from domain.operator import Action, ActionParams, OperatorAction
from services.audit import AuditService
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.tables import Notification
from tests.support.factories import eventually, order, payment_for, settle_and_terminate, start_order
from tests.support.temporal import make_settings, running_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]
Env = tuple[WorkflowEnvironment, Settings, Engine]


@pytest.fixture
async def env(time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine) -> AsyncIterator[Env]:
    settings = make_settings()
    for sku in ("CASE-IP15", "USB-C-1M"):
        InventoryService(sqlite_engine).set_on_hand("WH-SZ", sku, 10)
    async with running_worker(time_skipping_env.client, settings, sqlite_engine):
        yield time_skipping_env, settings, sqlite_engine
        await settle_and_terminate(time_skipping_env.client)


def act(kind: Action, reason: str, **params: Any) -> OperatorAction:
    return OperatorAction(action=kind, actor="lena@ops", reason=reason, params=ActionParams(**params))


async def cancel_mail(engine: Engine, order_id: str) -> Notification:
    def probe() -> list[Notification]:
        return [n for n in NotificationOutbox(engine).for_order(order_id) if n.kind == "order_cancelled"]

    return (await eventually(probe))[0]


def mailed(row: Notification) -> str:
    return f"{row.subject}\n{row.body_text}\n{getattr(row, 'body_html', '') or ''}"


async def test_operator_cancel_keeps_the_internal_reason_out_of_the_buyers_mail(env: Env) -> None:
    time_env, settings, engine = env
    placed = order()
    handle = await start_order(time_env.client, settings, placed)
    await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
    view = await handle.execute_update(OrderWorkflow.operate, act(Action.CANCEL, "suspected fraud"))

    assert (view.status, view.cancel_reason) == (OrderStatus.CANCELLED, "suspected fraud")
    assert [e.reason for e in AuditService(engine).for_order(view.order_id)] == ["suspected fraud"]
    text = mailed(await cancel_mail(engine, view.order_id))
    assert "fraud" not in text
    assert "Reason: we were unable to fulfil it." in text


async def test_a_cancel_with_words_for_the_buyer_mails_those_words(env: Env) -> None:
    time_env, settings, engine = env
    placed = order(language="de")
    handle = await start_order(time_env.client, settings, placed)
    words = "Die Lieferadresse konnte nicht bestätigt werden."
    view = await handle.execute_update(
        OrderWorkflow.operate, act(Action.CANCEL, "suspected fraud", customer_message=words)
    )
    text = mailed(await cancel_mail(engine, view.order_id))
    assert f"Grund: {words}" in text
    assert "fraud" not in text
    [audit] = AuditService(engine).for_order(view.order_id)
    assert (audit.reason, audit.params) == ("suspected fraud", {"customer_message": words})
    assert audit.at.utcoffset() == timedelta(0)  # tz-aware UTC, on SQLite too


async def test_a_channel_cancel_tells_the_buyer_it_was_their_request_in_their_language(env: Env) -> None:
    time_env, settings, engine = env
    handle = await start_order(time_env.client, settings, order(language="fr"))
    view = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer: changed mind #4411"))
    text = mailed(await cancel_mail(engine, view.order_id))
    assert "Motif : vous avez demandé son annulation." in text
    assert "changed mind" not in text


async def test_timeline_says_how_long_a_hold_lasted_and_when_payment_is_due(env: Env) -> None:
    time_env, settings, _ = env
    handle = await start_order(time_env.client, settings, order())
    placed = await handle.query(OrderWorkflow.view)
    due = next(e for e in placed.timeline if e.kind == "payment_due").detail
    assert placed.payment_due_at is not None
    assert due.startswith(f"by {placed.payment_due_at:%Y-%m-%d %H:%M} UTC (in 5 days): ")

    await handle.execute_update(OrderWorkflow.operate, act(Action.HOLD, "bank transfer"))
    await time_env.sleep(timedelta(hours=2, minutes=5, seconds=10))
    released = await handle.execute_update(OrderWorkflow.operate, act(Action.RELEASE, "arrived"))
    assert released.timeline[-1].detail == "lena@ops: arrived (held for 2 h 5 min)"


async def test_the_last_reminder_names_the_auto_cancel_time_and_promises_no_discount(env: Env) -> None:
    time_env, settings, engine = env
    handle = await start_order(time_env.client, settings, order())
    placed = await handle.query(OrderWorkflow.view)
    assert placed.payment_due_at is not None
    await time_env.sleep(timedelta(hours=73))

    def probe() -> list[Notification]:
        rows = NotificationOutbox(engine).for_order(placed.order_id)
        return [n for n in rows if n.kind == "payment_reminder_3"]

    text = mailed((await eventually(probe))[0])
    assert f"If we have not received it by {moment(placed.payment_due_at)}" in text
    assert "cancelled automatically" in text
    # The payment must equal the order total, so the mail offers nothing that would change it.
    assert "discount" not in text.lower()
    assert "free shipping" not in text.lower()
