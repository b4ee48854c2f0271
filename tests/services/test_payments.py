"""Money and messages recorded once under retries: payments, refunds, shipment requests, customer emails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.effects import RecordPayment, RecordRefund, RequestShipment
from domain.models import Address, ConfirmPayment, OrderLine
from services.notifications import NotificationOutbox
from services.payments import PaymentConflict, PaymentService
from services.shipments import ShipmentService
from services.tables import Payment


def payment(order_id: str, payment_id: str = "pay_1", amount: str = "59.80") -> RecordPayment:
    return RecordPayment(
        order_id=order_id,
        payment=ConfirmPayment(payment_id=payment_id, amount=Decimal(amount), currency="USD", method="card"),
    )


def payments(engine: Engine) -> list[Payment]:
    with Session(engine) as session:
        return list(session.exec(select(Payment)).all())


def test_a_payment_webhook_delivered_twice_is_recorded_once(engine: Engine) -> None:
    service = PaymentService(engine)

    assert service.record_payment(payment("ord_1")) is True
    assert service.record_payment(payment("ord_1")) is False

    [row] = payments(engine)
    assert (row.payment_id, row.order_id, row.amount, row.currency) == (
        "pay_1",
        "ord_1",
        Decimal("59.80"),
        "USD",
    )


def test_one_payment_cannot_pay_for_two_orders(engine: Engine) -> None:
    service = PaymentService(engine)
    service.record_payment(payment("ord_1"))

    with pytest.raises(PaymentConflict, match="pay_1"):
        service.record_payment(payment("ord_2"))

    assert [(p.payment_id, p.order_id) for p in payments(engine)] == [("pay_1", "ord_1")]


def test_a_retried_refund_is_owed_once(engine: Engine) -> None:
    service = PaymentService(engine)
    refund = RecordRefund(
        order_id="ord_1", payment_id="pay_1", amount=Decimal("59.80"), currency="USD", reason="cancelled"
    )

    first = service.record_refund(refund)
    again = service.record_refund(refund)

    assert first == again == "ord_1:pay_1"  # the format refunds already recorded carry
    [row] = service.refunds_for("ord_1")
    assert (row.refund_id, row.amount, row.status) == (first, Decimal("59.80"), "pending")
    assert service.refunds_for("ord_2") == []


def test_a_warehouse_is_asked_to_ship_an_order_once(engine: Engine) -> None:
    service = ShipmentService(engine)
    request = RequestShipment(
        order_id="ord_1",
        warehouse="WH-1",
        lines=[
            OrderLine(
                sku="MUG-BLUE", quantity=2, unit_price=Decimal("19.90"), title="Blue mug", variant="350 ml"
            )
        ],
        address=Address(country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"),
        ship_by=datetime(2025, 3, 3, 12, 0, tzinfo=UTC),
    )

    assert service.request(request) is True
    assert service.request(request) is False

    [row] = service.pending("WH-1")
    assert row.order_id == "ord_1"
    [line] = row.lines  # what the picker needs: the SKU, how many, and what the buyer saw it as
    assert (line["sku"], line["quantity"], line["unit_price"]) == ("MUG-BLUE", 2, "19.90")
    assert (line["title"], line["variant"]) == ("Blue mug", "350 ml")
    assert row.address["city"] == "Berlin"
    assert service.pending("WH-2") == []


def test_a_customer_message_is_recorded_once_and_a_retry_gets_the_first_text(engine: Engine) -> None:
    outbox = NotificationOutbox(engine)
    first = outbox.record(
        order_id="ord_1",
        kind="payment_reminder_1",
        recipient="ana@example.com",
        language="en",
        subject="Your order #1001 is waiting for payment",
        body_text="Hi Ana, please pay.",
    )
    retry = outbox.record(
        order_id="ord_1",
        kind="payment_reminder_1",
        recipient="ana@example.com",
        language="de",
        subject="Ihre Bestellung #1001 wartet auf Zahlung",
        body_text="Hallo Ana, bitte zahlen.",
    )

    assert (retry.subject, retry.body_text, retry.language) == (first.subject, first.body_text, "en")
    [row] = outbox.for_order("ord_1")
    assert (row.kind, row.subject, row.sent_at) == ("payment_reminder_1", first.subject, None)


def test_mark_sent_records_when_the_message_left(engine: Engine) -> None:
    outbox = NotificationOutbox(engine)
    for kind in ("order_confirmed", "order_shipped"):
        outbox.record(
            order_id="ord_1",
            kind=kind,
            recipient="ana@example.com",
            language="en",
            subject=kind,
            body_text="...",
        )
    before = datetime.now(UTC)

    outbox.mark_sent("ord_1", "order_confirmed")

    sent = {row.kind: row.sent_at for row in outbox.for_order("ord_1")}
    assert sent["order_shipped"] is None
    sent_at = sent["order_confirmed"]
    assert sent_at is not None
    sent_at = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)  # SQLite returns naive UTC
    assert before - timedelta(seconds=5) <= sent_at <= datetime.now(UTC) + timedelta(seconds=5)
