"""What the SMTP server received, held against the orders' plans and the outbox table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlmodel import Session, select

from services.tables import Notification
from tests.smtp import Arrival

if TYPE_CHECKING:
    from tests.reliability import Plan


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
