"""Payments received and refunds owed, each keyed so a retry or a duplicate webhook records once."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from domain.effects import RecordPayment, RecordRefund
from services.db import transaction
from services.tables import Payment, Refund


def refund_id(order_id: str, payment_id: str) -> str:
    """The refund's id: one per (order, payment), the same on every retry."""
    return f"{order_id}:{payment_id}"


class PaymentConflict(Exception):
    """The payment_id is already recorded against another order."""


class PaymentService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_payment(self, request: RecordPayment) -> bool:
        """Record the payment; False when this payment_id was already recorded for this order."""
        payment = request.payment
        try:
            with transaction(self._engine) as session:
                session.add(
                    Payment(
                        payment_id=payment.payment_id,
                        order_id=request.order_id,
                        amount=payment.amount,
                        currency=payment.currency,
                        method=payment.method,
                    )
                )
            return True
        except IntegrityError:
            with Session(self._engine) as session:
                existing = session.get(Payment, payment.payment_id)
            if existing is None:  # not a duplicate: another constraint refused the row
                raise
            if existing.order_id != request.order_id:
                raise PaymentConflict(
                    f"payment {payment.payment_id} already belongs to another order"
                ) from None
            return False

    def record_refund(self, request: RecordRefund) -> str:
        """Owe the buyer a refund of the payment; one refund per payment, whatever the retries."""
        owed = refund_id(request.order_id, request.payment_id)
        try:
            with transaction(self._engine) as session:
                session.add(
                    Refund(
                        refund_id=owed,
                        order_id=request.order_id,
                        payment_id=request.payment_id,
                        amount=request.amount,
                        currency=request.currency,
                        reason=request.reason,
                    )
                )
        except IntegrityError:
            with Session(self._engine) as session:
                if session.get(Refund, owed) is None:  # not recorded earlier: the row was refused
                    raise
        return owed

    def settle_refund(self, refund_id: str, status: str) -> None:
        """What the payment provider says of the refund: succeeded or failed (a succeeded refund stays so)."""
        with transaction(self._engine) as session:
            refund = session.get(Refund, refund_id, with_for_update=True)
            if refund is not None and refund.status != "succeeded":
                refund.status = status

    def refunds_for(self, order_id: str) -> list[Refund]:
        with Session(self._engine) as session:
            return list(session.exec(select(Refund).where(Refund.order_id == order_id)).all())
