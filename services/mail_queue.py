"""Unsent outbox mail: claims so only one sender sends a row, failed attempts, giving up, the pending list."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from services.db import transaction
from services.tables import Notification, utcnow

# Long enough for one SMTP conversation (10 s time-out per step); a claim whose holder died lapses.
CLAIM_LEASE = timedelta(minutes=2)
ERROR_LENGTH = 300  # notifications.last_error


def _unsent() -> list[object]:
    return [col(Notification.sent_at).is_(None), col(Notification.given_up_at).is_(None)]


def _free(now: datetime) -> object:
    return or_(col(Notification.claimed_until).is_(None), col(Notification.claimed_until) < now)


class MailQueue:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, order_id: str, kind: str, holder: str, lease: timedelta = CLAIM_LEASE) -> bool:
        """Take the row for `holder` if it is unsent, not given up and held by nobody, by a claim that
        lapsed, or by `holder` itself (a retry after a crash). A conditional UPDATE, so of two senders
        racing on either database one wins."""
        now = utcnow()
        with transaction(self._engine) as session:
            result = session.execute(
                update(Notification)
                .where(
                    col(Notification.order_id) == order_id,
                    col(Notification.kind) == kind,
                    *_unsent(),  # type: ignore[arg-type]
                    or_(_free(now), col(Notification.claimed_by) == holder),  # type: ignore[arg-type]
                )
                .values(claimed_until=now + lease, claimed_by=holder)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release(self, order_id: str, kind: str, holder: str, error: str) -> None:
        """A send by `holder` failed: count it, keep the error, and let the next sender have the row."""
        with transaction(self._engine) as session:
            session.execute(
                update(Notification)
                .where(
                    col(Notification.order_id) == order_id,
                    col(Notification.kind) == kind,
                    col(Notification.claimed_by) == holder,
                )
                .values(
                    claimed_until=None,
                    claimed_by=None,
                    attempts=col(Notification.attempts) + 1,
                    last_error=error[:ERROR_LENGTH],
                )
            )

    def due(self, *, settled_for: timedelta, limit: int) -> list[Notification]:
        """Unsent rows nobody holds, oldest first, written at least `settled_for` ago (the order's
        own send goes first)."""
        now = utcnow()
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Notification)
                    .where(*_unsent(), _free(now), col(Notification.created_at) <= now - settled_for)  # type: ignore[arg-type]
                    .order_by(col(Notification.created_at), col(Notification.order_id))
                    .limit(limit)
                ).all()
            )

    def give_up_older_than(self, age: timedelta) -> list[Notification]:
        """Mark unsent rows written more than `age` ago (and held by nobody) given up; returns them.
        One conditional UPDATE, so a row a sender claims meanwhile is either sent or given up, never
        both (a select-then-write would give up a row claimed between the two on PostgreSQL)."""
        now = utcnow()
        conditions = [*_unsent(), _free(now), col(Notification.created_at) < now - age]
        with transaction(self._engine) as session:
            session.execute(update(Notification).where(*conditions).values(given_up_at=now))  # type: ignore[arg-type]
            return list(session.exec(select(Notification).where(col(Notification.given_up_at) == now)).all())

    def pending(self, *, given_up: bool = False) -> list[Notification]:
        """Unsent mail, oldest first: waiting to be sent, or (given_up=True) the mail given up on."""
        state = (
            col(Notification.given_up_at).is_not(None)
            if given_up
            else col(Notification.given_up_at).is_(None)
        )
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Notification)
                    .where(col(Notification.sent_at).is_(None), state)
                    .order_by(col(Notification.created_at), col(Notification.order_id))
                ).all()
            )

    def mark_sent(self, order_id: str, kind: str) -> None:
        """The SMTP server accepted the message (its 250): nobody sends this row again."""
        with transaction(self._engine) as session:
            session.execute(
                update(Notification)
                .where(col(Notification.order_id) == order_id, col(Notification.kind) == kind)
                .values(sent_at=utcnow(), claimed_until=None, claimed_by=None)
            )
