"""Activities retried as Temporal retries them: the same call twice changes nothing the second time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.inventory import InventoryActivities
from activities.notifications import NotificationActivities
from activities.orders import OrderActivities
from domain.effects import LockStock, RecordPayment, ReleaseStock
from domain.models import ConfirmPayment
from domain.notifications import NotificationKind, Notify
from services.audit import AuditService
from services.email import SmtpMailer
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from services.payments import PaymentService
from services.shipments import ShipmentService
from services.tables import StockMove
from tests.support.factories import order
from tests.support.smtp import SmtpServer


def test_a_retried_lock_activity_locks_once(engine: Engine) -> None:
    inventory = InventoryService(engine)
    inventory.set_on_hand("WH-SZ", "CASE-IP15", 5)
    inventory.set_on_hand("WH-SZ", "USB-C-1M", 5)
    acts = InventoryActivities(inventory)
    request = LockStock(order_id="ord_retry", lines=order().lines, destination="DE")
    env = ActivityEnvironment()
    first = env.run(acts.lock_stock, request)
    second = env.run(acts.lock_stock, request)
    assert first == second
    assert first.warehouse == "WH-SZ"
    level = inventory.get("WH-SZ", "CASE-IP15")
    assert level is not None
    assert (level.locked, level.available) == (2, 3)
    assert env.run(acts.release_stock, ReleaseStock(order_id="ord_retry")) == 3
    assert env.run(acts.release_stock, ReleaseStock(order_id="ord_retry")) == 0
    with Session(engine) as session:
        kinds = sorted(m.kind for m in session.exec(select(StockMove)).all())
    assert kinds == ["lock", "lock", "release", "release"]


def test_a_payment_id_of_another_order_fails_without_retries(engine: Engine) -> None:
    acts = OrderActivities(
        OrderStore(engine), PaymentService(engine), ShipmentService(engine), AuditService(engine)
    )
    payment = ConfirmPayment(payment_id="psp_1", amount=Decimal("29.90"), currency="USD", method="card")
    env = ActivityEnvironment()
    assert env.run(acts.record_payment, RecordPayment(order_id="ord_a", payment=payment)) is True
    assert env.run(acts.record_payment, RecordPayment(order_id="ord_a", payment=payment)) is False
    with pytest.raises(ApplicationError) as failure:
        env.run(acts.record_payment, RecordPayment(order_id="ord_b", payment=payment))
    assert failure.value.non_retryable
    assert failure.value.type == "PaymentConflict"


def _notify(kind: NotificationKind = NotificationKind.PAYMENT_REMINDER_1) -> Notify:
    placed = order(language="de-AT")
    return Notify(
        order_id="ord_mail",
        kind=kind,
        customer=placed.customer,
        channel_order_id=placed.channel_order_id,
        lines=placed.lines,
        total=placed.total,
        currency=placed.currency,
    )


async def test_a_reminder_retried_after_sending_is_not_mailed_twice(
    sqlite_engine: Engine, smtp_server: SmtpServer
) -> None:
    outbox = NotificationOutbox(sqlite_engine)
    mailer = SmtpMailer(host="127.0.0.1", port=smtp_server.port, sender="shop@example.com")
    acts = NotificationActivities(
        outbox, mailer, shop_name="Demo", pay_url_template="https://shop.example/pay/{order_id}"
    )
    env = ActivityEnvironment()
    assert await env.run(acts.notify_customer, _notify()) is True
    assert await env.run(acts.notify_customer, _notify()) is False
    await asyncio.sleep(0)
    assert len(smtp_server.inbox.received) == 1
    recipients, message = smtp_server.inbox.received[0]
    assert recipients == ["ana@example.com"]
    assert "https://shop.example/pay/ord_mail" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    rows = outbox.for_order("ord_mail")
    assert [(r.kind, r.language, r.sent_at is not None) for r in rows] == [("payment_reminder_1", "de", True)]


async def test_without_smtp_the_message_is_kept_in_the_outbox(sqlite_engine: Engine) -> None:
    outbox = NotificationOutbox(sqlite_engine)
    acts = NotificationActivities(outbox, None, shop_name="Demo", pay_url_template="https://x/{order_id}")
    assert await ActivityEnvironment().run(acts.notify_customer, _notify()) is False
    [row] = outbox.for_order("ord_mail")
    assert row.sent_at is None
    assert "ord_mail" not in row.subject  # the buyer sees the channel's order number, not ours
    assert order().customer.name in row.body_text
