"""Customer emails as a buyer sees them: every kind in every language, and delivery over real SMTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import aiosmtplib
import pytest

from domain.models import Customer, OrderLine
from domain.notifications import PAYMENT_REMINDERS, CancelKind, NotificationKind, Notify
from services.email import LANGUAGES, RenderedEmail, SmtpMailer, render_email
from tests.support.smtp import Inbox, SmtpServer, serving

SHOP = "Maple & Co"
PAY_URL = "https://shop.example/pay/ord_123"
KINDS = list(NotificationKind)


def make_notify(
    kind: NotificationKind, *, language: str = "en", name: str = "Anna Müller", **extra: Any
) -> Notify:
    fields: dict[str, Any] = {
        "cancel_reason": "payment_timeout",
        "carrier": "DHL",
        "tracking_number": "JD014600001234",
        **extra,
    }
    return Notify(
        order_id="ord_123",
        kind=kind,
        customer=Customer(name=name, email="anna@example.com", language=language),
        channel_order_id="#1001",
        lines=[
            OrderLine(sku="MUG-BLUE", quantity=2, unit_price=Decimal("19.90")),
            OrderLine(sku="TEE-L", quantity=1, unit_price=Decimal("20")),
        ],
        total=Decimal("59.80"),
        currency="USD",
        **fields,
    )


def render(kind: NotificationKind, *, pay_url: str = PAY_URL, **kw: Any) -> RenderedEmail:
    return render_email(make_notify(kind, **kw), shop_name=SHOP, pay_url=pay_url)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_in_every_language_is_personalised(kind: NotificationKind, language: str) -> None:
    email = render(kind, language=language)

    assert email.language == language
    assert "#1001" in email.subject
    assert "\n" not in email.subject
    for body in (email.text, email.html):
        assert "Anna Müller" in body
        assert "#1001" in body
        assert "MUG-BLUE \N{MULTIPLICATION SIGN} 2" in body
        assert "19.90 USD" in body
        assert "20.00 USD" in body
        assert "59.80 USD" in body
    assert "Maple &amp; Co" in email.html
    assert f'<html lang="{language}">' in email.html
    if kind in PAYMENT_REMINDERS:
        assert PAY_URL in email.text
        assert f'href="{PAY_URL}"' in email.html
    else:
        assert PAY_URL not in email.text
    if kind is NotificationKind.ORDER_SHIPPED:
        assert "DHL" in email.text
        assert "JD014600001234" in email.text
        assert "JD014600001234" in email.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_three_reminders_say_different_things(language: str) -> None:
    reminders = [render(kind, language=language) for kind in PAYMENT_REMINDERS]

    assert len({email.subject for email in reminders}) == 3
    assert len({email.text for email in reminders}) == 3


def test_the_second_reminder_offers_help_by_reply() -> None:
    email = render(NotificationKind.PAYMENT_REMINDER_2)

    assert "Having trouble paying?" in email.text
    assert "reply to this email" in email.text


def test_regional_language_tags_use_their_base_language() -> None:
    chinese = render(NotificationKind.PAYMENT_REMINDER_1, language="zh-CN")
    austrian = render(NotificationKind.ORDER_SHIPPED, language="de-AT")

    assert chinese.language == "zh"
    assert chinese.subject == "您的订单 #1001 正在等待付款"
    assert "合计" in chinese.text
    assert "59.80 USD" in chinese.text
    assert austrian.language == "de"
    assert "Sendungsnummer: JD014600001234" in austrian.text


def test_unknown_language_falls_back_to_english() -> None:
    unknown = render(NotificationKind.PAYMENT_REMINDER_1, language="xx")

    assert unknown == render(NotificationKind.PAYMENT_REMINDER_1, language="en")
    assert unknown.subject == "Your order #1001 is waiting for payment"


@pytest.mark.parametrize(
    ("language", "will_be_cancelled"),
    [
        ("en", "the order will be cancelled automatically"),
        ("zh", "订单将被自动取消"),
        ("es", "el pedido se cancelará automáticamente"),
        ("de", "wird die Bestellung automatisch storniert"),
        ("fr", "la commande sera annulée automatiquement"),
    ],
)
def test_final_reminder_names_the_auto_cancel_time_and_offers_nothing_it_cannot_honour(
    language: str, will_be_cancelled: str
) -> None:
    due = datetime(2026, 12, 4, 5, 56, 31, tzinfo=UTC)
    email = render(NotificationKind.PAYMENT_REMINDER_3, language=language, payment_due_at=due)

    assert will_be_cancelled in email.text
    assert "2026-12-04 05:56 UTC" in email.text
    assert "2026-12-04 05:56 UTC" in email.html
    # A discount or free shipping would be refused by the exact-amount payment check.
    for promise in ("discount", "free", "gratis", "offerte", "versandkostenfrei", "免运费", "优惠"):
        assert promise not in email.text.lower()
    assert "discount=" not in email.html


def test_final_reminder_queued_before_the_due_time_was_carried_still_reads_well() -> None:
    email = render(NotificationKind.PAYMENT_REMINDER_3)

    assert email.subject == "Last reminder: order #1001 is still unpaid"
    assert "will be cancelled automatically" in email.text
    assert "None" not in email.text


@pytest.mark.parametrize(
    ("language", "readable_reason"),
    [
        ("en", "we did not receive payment in time"),
        ("zh", "我们未能按时收到您的付款"),
        ("es", "no recibimos el pago a tiempo"),
        ("de", "Wir haben Ihre Zahlung nicht rechtzeitig erhalten"),
        ("fr", "nous n'avons pas reçu votre paiement à temps"),
    ],
)
def test_cancellation_explains_a_payment_timeout(language: str, readable_reason: str) -> None:
    email = render(NotificationKind.ORDER_CANCELLED, language=language)

    assert readable_reason in email.text
    assert "payment_timeout" not in email.text
    assert "payment_timeout" not in email.html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(CancelKind))
def test_cancellation_tells_the_kind_never_the_internal_reason(language: str, kind: CancelKind) -> None:
    email = render(
        NotificationKind.ORDER_CANCELLED, language=language, cancel_reason="suspected fraud", cancel_kind=kind
    )

    assert "fraud" not in email.text + email.html
    assert kind.value not in email.text + email.html
    others = [render(NotificationKind.ORDER_CANCELLED, language=language, cancel_kind=k) for k in CancelKind]
    assert len({o.text for o in others}) == len(CancelKind)  # each kind reads differently


def test_cancellation_gives_the_buyer_the_words_meant_for_them() -> None:
    email = render(
        NotificationKind.ORDER_CANCELLED,
        cancel_reason="suspected fraud",
        cancel_kind=CancelKind.SELLER_CANCELLED,
        customer_message="We could not verify the delivery address.",
    )

    assert "Reason: We could not verify the delivery address." in email.text
    assert "We could not verify the delivery address." in email.html
    assert "fraud" not in email.text + email.html


def test_shipped_email_needs_tracking_details() -> None:
    with pytest.raises(ValueError, match="tracking number"):
        render(NotificationKind.ORDER_SHIPPED, tracking_number=None)


def test_html_escapes_a_hostile_customer_name() -> None:
    email = render(NotificationKind.PAYMENT_REMINDER_1, name='<script>alert("x")</script>')

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in email.html
    assert '<script>alert("x")</script>' in email.text


# --- delivery through a real SMTP server ---------------------------------------------------------


def mailer_for(server: SmtpServer) -> SmtpMailer:
    return SmtpMailer(host="127.0.0.1", port=server.port, sender=f"{SHOP} <shop@example.com>")


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    assert part.get_content_type() == f"text/{subtype}"
    return cast(str, part.get_content()).replace("\r\n", "\n")


async def test_sent_email_arrives_with_subject_message_id_and_both_parts(
    smtp_server: SmtpServer,
) -> None:
    email = render(NotificationKind.PAYMENT_REMINDER_1, language="zh-CN")

    await mailer_for(smtp_server).send(
        to="anna@example.com", email=email, message_id="ord_123.payment_reminder_1"
    )

    [(recipients, message)] = smtp_server.inbox.received
    assert recipients == ["anna@example.com"]
    assert message["To"] == "anna@example.com"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (SHOP, "shop@example.com")
    assert message["Subject"] == "您的订单 #1001 正在等待付款"
    assert message["Message-ID"] == "<ord_123.payment_reminder_1@orderflow>"
    assert message["Content-Language"] == "zh"
    assert message.get_content_type() == "multipart/alternative"
    assert body(message, "plain") == email.text
    assert body(message, "html") == email.html
    assert "感谢您在 Maple & Co 购物" in body(message, "plain")


async def test_resending_a_notification_keeps_its_message_id(smtp_server: SmtpServer) -> None:
    mailer = mailer_for(smtp_server)
    email = render(NotificationKind.ORDER_SHIPPED)

    for _ in range(2):
        await mailer.send(to="anna@example.com", email=email, message_id="ord_123.order_shipped")

    ids = [message["Message-ID"] for _, message in smtp_server.inbox.received]
    assert ids == ["<ord_123.order_shipped@orderflow>"] * 2


async def test_smtp_refusal_reaches_the_caller(smtp_server: SmtpServer) -> None:
    smtp_server.inbox.refuse.add("nobody@example.com")
    email = render(NotificationKind.ORDER_CANCELLED)

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await mailer_for(smtp_server).send(
            to="nobody@example.com", email=email, message_id="ord_123.order_cancelled"
        )
    assert smtp_server.inbox.received == []


def test_a_parcel_notification_gets_a_valid_message_id_of_its_own() -> None:
    email = render(NotificationKind.ORDER_SHIPPED)
    mailer = mailer_for(SmtpServer(inbox=Inbox(), port=25))

    built = mailer.build_message(to="anna@example.com", email=email, message_id="ord_123.order_shipped:WH-A")
    parsed = message_from_bytes(built.as_bytes(), policy=policy.default)

    # a colon cannot stand in a Message-ID: unescaped, the header was cut short at it
    assert parsed["Message-ID"] == "<ord_123.order_shipped%3AWH-A@orderflow>"
    assert parsed["Message-ID"].defects == ()


class AcceptThenFailQuit(Inbox):
    """Accepts every message, then answers QUIT with an error: the message is in all the same."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.events.append("accepted")
        return await super().handle_DATA(server, session, envelope)

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.events.append("quit")
        return "421 4.3.0 Service shutting down"


async def test_a_delivery_is_recorded_once_accepted_and_a_failed_quit_does_not_undo_it() -> None:
    inbox = AcceptThenFailQuit()
    recorded: list[list[str]] = []

    async def accepted() -> None:
        recorded.append(list(inbox.events))

    with serving(inbox) as port:
        await mailer_for(SmtpServer(inbox, port)).send(
            to="anna@example.com",
            email=render(NotificationKind.ORDER_CANCELLED),
            message_id="ord_123.order_cancelled",
            accepted=accepted,
        )

    assert recorded == [["accepted"]], "recorded after the 250 to DATA, before QUIT"
    assert inbox.events == ["accepted", "quit"]
    assert len(inbox.received) == 1


class AcceptThenHangUp(Inbox):
    """Keeps the first message, then drops the connection before answering: the client cannot
    know the message is in. Answers later ones."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        status = await super().handle_DATA(server, session, envelope)
        if len(self.received) == 1:
            server.transport.close()
            await asyncio.sleep(5)  # cancelled when the connection is gone
        return status


async def test_a_lost_acceptance_fails_the_send_and_the_resend_carries_the_same_message_id() -> None:
    """The window SMTP cannot close: the server took the message but the answer never came. The
    caller must retry (a lost notice is worse than a second copy), and the copy is recognisable."""
    inbox = AcceptThenHangUp()
    recorded: list[str] = []

    async def accepted() -> None:
        recorded.append("sent")

    with serving(inbox) as port:
        mailer = mailer_for(SmtpServer(inbox, port))
        email = render(NotificationKind.ORDER_SHIPPED)
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await mailer.send(
                to="anna@example.com", email=email, message_id="ord_123.order_shipped", accepted=accepted
            )
        await mailer.send(to="anna@example.com", email=email, message_id="ord_123.order_shipped")

    assert recorded == []
    ids = [message["Message-ID"] for _, message in inbox.received]
    assert ids == ["<ord_123.order_shipped@orderflow>"] * 2
