"""What must hold after a reliability run: the order views, the workflows and their histories, the
stock ledger, payments, refunds, shipment requests and read model, and the mails received held
against the orders' plans and the outbox table."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from domain.models import OrderView
from services.tables import Notification, OrderRow, Payment, Refund, ShipmentRequest, Stock, StockMove
from tests.support.drivers import Run
from tests.support.plans import ON_HAND, PAYS, REFUNDS, SHIPS, WAREHOUSE, Plan, Scenario
from tests.support.smtp import Arrival
from tests.support.stack import Stack


async def outcome_problems(stack: Stack, plans: list[Plan], run: Run) -> list[str]:
    """Everything that is wrong after the run: the order views, the workflows and their histories,
    the mails received against the outbox, and the database (ledger, stock rows, payments,
    refunds, shipment requests, read model)."""
    problems: list[str] = []
    for plan, result in zip(plans, run.results, strict=True):
        if isinstance(result, BaseException):
            cause = result.cause if isinstance(result, WorkflowFailureError) else None
            problems.append(f"{plan.order_id} ({plan.scenario}): {result!r} {cause!r}")
        else:
            problems += view_problems(plan, result)
    problems += await workflow_problems(stack.client, plans)
    problems += await asyncio.to_thread(ledger_problems, stack.engine, plans)
    problems += await asyncio.to_thread(mail_problems, stack.engine, plans, stack.mail.snapshot())
    return problems


def view_problems(plan: Plan, view: OrderView) -> list[str]:
    problems = []
    if view.status != plan.expected_status:
        problems.append(
            f"{plan.order_id} ({plan.scenario}): ended {view.status}, expected {plan.expected_status}"
        )
    events = Counter(event.kind for event in view.timeline)
    reminders = 3 if plan.scenario == Scenario.PAYMENT_TIMEOUT else 0
    if events["payment_reminder"] != reminders or view.reminders_sent != reminders:
        problems.append(
            f"{plan.order_id}: {events['payment_reminder']} reminder events, reminders_sent "
            f"{view.reminders_sent}, expected {reminders}"
        )
    for kind in ("placed", "completed" if plan.scenario in SHIPS else "cancelled"):
        if events[kind] != 1:
            problems.append(f"{plan.order_id}: {events[kind]} '{kind}' timeline events")
    if plan.scenario in SHIPS and events["shipped"] != 1:
        problems.append(f"{plan.order_id}: {events['shipped']} 'shipped' timeline events")
    if plan.scenario == Scenario.PAYMENT_TIMEOUT and view.cancel_reason != "payment_timeout":
        problems.append(f"{plan.order_id}: cancelled for {view.cancel_reason!r}")
    return problems


async def workflow_problems(client: Client, plans: list[Plan]) -> list[str]:
    """Every workflow closed as Completed, and no workflow task failed (a non-determinism error on
    replay after a crash would show here; a task lost with a killed worker is a timeout, not this)."""
    problems: list[str] = []

    async def one(plan: Plan) -> None:
        handle = client.get_workflow_handle(plan.workflow_id)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.COMPLETED:
            problems.append(f"{plan.order_id}: workflow {description.status}")
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                attrs = event.workflow_task_failed_event_attributes
                problems.append(
                    f"{plan.order_id}: workflow task failed ({attrs.cause}): {attrs.failure.message}"
                )

    for chunk in range(0, len(plans), 20):
        await asyncio.gather(*(one(plan) for plan in plans[chunk : chunk + 20]))
    return problems


def ledger_problems(engine: Engine, plans: list[Plan]) -> list[str]:
    problems: list[str] = []
    with Session(engine) as session:
        moves = list(session.exec(select(StockMove)).all())
        stock = {
            row.sku: row for row in session.exec(select(Stock).where(Stock.warehouse == WAREHOUSE)).all()
        }
        payments = Counter(session.exec(select(Payment.order_id)).all())
        refunds = Counter(session.exec(select(Refund.order_id)).all())
        requests = {(r.order_id, r.warehouse): r.status for r in session.exec(select(ShipmentRequest)).all()}
        projected = {r.order_id: r.status for r in session.exec(select(OrderRow)).all()}
        duplicates = session.exec(
            select(StockMove.order_id, StockMove.line_no, StockMove.warehouse, StockMove.kind)
            .group_by(
                col(StockMove.order_id),
                col(StockMove.line_no),
                col(StockMove.warehouse),
                col(StockMove.kind),
                col(StockMove.generation),
            )
            .having(func.count() > 1)
        ).all()
    problems += [f"stock move recorded twice: {row}" for row in duplicates]

    by_order: dict[str, list[StockMove]] = defaultdict(list)
    for move in moves:
        by_order[move.order_id].append(move)
    shipped_units: Counter[str] = Counter()
    for plan in plans:
        mine = by_order.pop(plan.order_id, [])
        kinds = Counter(m.kind for m in mine)
        for opening, closings in (
            ("reserve", ("unreserve", "lock_from_reserve")),
            ("lock", ("release", "ship")),
        ):
            for move in (m for m in mine if m.kind == opening):
                key = (move.line_no, move.warehouse, move.generation)
                closed = [
                    m for m in mine if m.kind in closings and (m.line_no, m.warehouse, m.generation) == key
                ]
                if len(closed) != 1:
                    problems.append(
                        f"{plan.order_id}: {opening} of line {move.line_no} closed {len(closed)} times"
                    )
        wanted = {line.sku: line.quantity for line in plan.placed.lines}
        if plan.scenario in SHIPS:
            got: Counter[str] = Counter()
            for move in mine:
                if move.kind == "ship":
                    got[move.sku] += move.quantity
            if dict(got) != wanted:
                problems.append(f"{plan.order_id}: shipped {dict(got)}, ordered {wanted}")
            shipped_units.update(got)
        elif kinds["ship"]:
            problems.append(f"{plan.order_id}: cancelled but stock shipped")
        locks = len(wanted) if plan.scenario in PAYS else 0
        if kinds["lock"] != locks or kinds["reserve"] != len(wanted):
            problems.append(
                f"{plan.order_id}: {kinds['reserve']} reserve and {kinds['lock']} lock rows for "
                f"{len(wanted)} lines, expected {len(wanted)} and {locks}"
            )

        paid = 1 if plan.scenario in PAYS else 0
        if payments[plan.order_id] != paid:
            problems.append(f"{plan.order_id}: {payments[plan.order_id]} payments recorded, expected {paid}")
        refunded = 1 if plan.scenario in REFUNDS else 0
        if refunds[plan.order_id] != refunded:
            problems.append(f"{plan.order_id}: {refunds[plan.order_id]} refunds, expected {refunded}")
        request = requests.get((plan.order_id, WAREHOUSE))
        expected_request = ("shipped" if plan.scenario in SHIPS else "cancelled") if paid else None
        if request != expected_request:
            problems.append(f"{plan.order_id}: shipment request {request}, expected {expected_request}")
        if projected.get(plan.order_id) != plan.expected_status:
            problems.append(f"{plan.order_id}: read model says {projected.get(plan.order_id)}")
    problems += [f"stock moves of an unknown order {order_id}" for order_id in by_order]

    for sku, row in stock.items():
        if (row.locked, row.reserved) != (0, 0):
            problems.append(
                f"{sku}: {row.locked} locked and {row.reserved} reserved after every order closed"
            )
        if row.on_hand != ON_HAND - shipped_units[sku]:
            problems.append(
                f"{sku}: on_hand {row.on_hand}, expected {ON_HAND} - {shipped_units[sku]} shipped"
            )

    return problems


def message_id(order_id: str, kind: str) -> str:
    """The Message-ID every copy of one notification carries (pinned here, not imported)."""
    return f"<{order_id}.{kind}@orderflow>"


def mail_problems(engine: Engine, plans: Sequence[Plan], arrivals: Sequence[Arrival]) -> list[str]:
    """Each mail an order should have sent arrived exactly once (counted by recipient and
    Message-ID, so a second delivery shows), nothing else arrived, and the outbox holds one row
    per expected mail and no other, marked sent after the server accepted it, under the subject
    that arrived."""
    with Session(engine) as session:
        rows = {(row.order_id, row.kind): row for row in session.exec(select(Notification)).all()}
    copies: dict[tuple[str, str], list[Arrival]] = defaultdict(list)
    for arrival in arrivals:
        for recipient in arrival.recipients:
            copies[(recipient, arrival.message_id)].append(arrival)

    problems: list[str] = []
    for plan in plans:
        recipient = plan.placed.customer.email
        for kind in sorted(plan.expected_notifications):
            got = copies.pop((recipient, message_id(plan.order_id, kind)), [])
            if len(got) != 1:
                times = [arrival.at.strftime("%H:%M:%S.%f") for arrival in got]
                problems.append(f"{plan.order_id}: {kind} mail arrived {len(got)} times {times}")
            row = rows.pop((plan.order_id, kind), None)
            if row is None:
                problems.append(f"{plan.order_id}: no outbox row for {kind}")
                continue
            if row.recipient != recipient:
                problems.append(f"{plan.order_id}: {kind} outbox row for {row.recipient}, not {recipient}")
            if row.sent_at is None:
                problems.append(f"{plan.order_id}: {kind} outbox row never marked sent")
            elif got and _utc(row.sent_at) < got[0].at:
                problems.append(
                    f"{plan.order_id}: {kind} marked sent at {row.sent_at}, before it arrived at {got[0].at}"
                )
            if got and got[0].subject != row.subject:
                problems.append(
                    f"{plan.order_id}: {kind} arrived as {got[0].subject!r}, outbox {row.subject!r}"
                )
    problems += [
        f"mail the orders did not call for: {message} to {recipient}, {len(got)} times"
        for (recipient, message), got in copies.items()
    ]
    problems += [f"outbox row the orders did not call for: {order_id} {kind}" for order_id, kind in rows]
    return problems


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives back naive UTC
