"""The audit trail of operator actions, written once per Temporal update."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.effects import AuditEntry
from services.db import transaction
from services.tables import AuditLog


class AuditService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, entry: AuditEntry) -> bool:
        """False when this action was already recorded (a retried activity)."""
        try:
            with transaction(self._engine) as session:
                session.add(AuditLog(**entry.model_dump()))
            return True
        except IntegrityError:
            return False

    def for_order(self, order_id: str) -> list[AuditEntry]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(AuditLog).where(AuditLog.order_id == order_id).order_by(col(AuditLog.at))
            ).all()
        # SQLite hands timestamps back without their zone: every row says UTC, on both databases.
        return [
            AuditEntry.model_validate(row, from_attributes=True).model_copy(update={"at": _utc(row.at)})
            for row in rows
        ]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
