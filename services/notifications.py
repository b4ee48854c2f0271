"""The outbox of customer messages: one row per (order_id, kind), marked when the SMTP server took it."""

from __future__ import annotations

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.db import transaction
from services.tables import Notification, utcnow


class NotificationOutbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        *,
        order_id: str,
        kind: str,
        recipient: str,
        language: str,
        subject: str,
        body_text: str,
        body_html: str | None = None,
    ) -> Notification:
        """Insert the message once; a retry gets the row an earlier attempt wrote."""
        try:
            with transaction(self._engine) as session:
                row = Notification(
                    order_id=order_id,
                    kind=kind,
                    recipient=recipient,
                    language=language,
                    subject=subject,
                    body_text=body_text,
                    body_html=body_html,
                )
                session.add(row)
            return row
        except IntegrityError:
            with Session(self._engine) as session:
                existing = session.get(Notification, (order_id, kind))
                assert existing is not None
                return existing

    def mark_sent(self, order_id: str, kind: str) -> None:
        """Called the moment the SMTP server accepted the message: a retry that finds it sends nothing."""
        with transaction(self._engine) as session:
            session.execute(
                update(Notification)
                .where(col(Notification.order_id) == order_id, col(Notification.kind) == kind)
                .values(sent_at=utcnow())
            )

    def for_order(self, order_id: str) -> list[Notification]:
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(Notification)
                    .where(Notification.order_id == order_id)
                    .order_by(col(Notification.created_at))
                ).all()
            )
