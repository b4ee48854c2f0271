"""Customer email: renders a Notify into subject, plain text and HTML per language, and sends it by SMTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict

from domain.codes import CURRENCY_EXPONENTS
from domain.humanize import moment
from domain.notifications import NotificationKind, Notify

LANGUAGES: tuple[str, ...] = ("en", "zh", "es", "de", "fr")
DEFAULT_LANGUAGE = "en"
# RFC 5322 atext besides letters and digits: the id-left of a Message-ID may hold only these (and dots).
_ATEXT = "!#$&'*+-/=?^_`{|}~."

# Templates live in services/templates/email/<lang>/<kind>.txt.j2 and .html.j2; the first line of the
# text template is the subject. HTML templates extend the shared base.html.j2 and are autoescaped.
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "email"),
    autoescape=select_autoescape(["html.j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class RenderedEmail(BaseModel):
    """One message ready to send: the language it was written in, its subject and both bodies
    (`html` empty: plain text only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str
    subject: str
    text: str
    html: str


def base_language(language: str) -> str:
    """The template set for a customer language tag: "zh-CN" -> "zh", unknown -> English."""
    base = language.split("-", 1)[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def format_money(amount: Decimal, currency: str) -> str:
    """A Decimal with the currency's minor digits and its code, e.g. "59.80 USD" or "1200 JPY"."""
    places = Decimal(1).scaleb(-CURRENCY_EXPONENTS.get(currency, 2))
    return f"{amount.quantize(places):f} {currency}"


def render_email(notify: Notify, *, shop_name: str, pay_url: str) -> RenderedEmail:
    """Write the message for `notify` in the customer's language (English when we have no set)."""
    kind = NotificationKind(notify.kind)
    if kind is NotificationKind.ORDER_SHIPPED and not (notify.carrier and notify.tracking_number):
        raise ValueError("an order_shipped email needs a carrier and a tracking number")
    language = base_language(notify.customer.language)
    context: dict[str, Any] = {
        "lang": language,
        "shop_name": shop_name,
        "name": notify.customer.name,
        "order_number": notify.channel_order_id,
        "items": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": format_money(line.unit_price, notify.currency),
            }
            for line in notify.lines
        ],
        "total": format_money(notify.total, notify.currency),
        "pay_url": pay_url,
        # The last reminder names the auto-cancel time; it offers no discount or free shipping,
        # which the channel, not orderflow, would have to honour (a payment must equal the total).
        "pay_by": moment(notify.payment_due_at) if notify.payment_due_at else None,
        # The buyer hears the kind of cancellation in their language (or the words given for them),
        # never the internal reason; mails queued by older orders carry only cancel_reason.
        "cancel_kind": notify.cancel_kind
        or ("payment_timeout" if notify.cancel_reason == "payment_timeout" else None),
        "customer_message": notify.customer_message,
        "carrier": notify.carrier,
        "tracking_number": notify.tracking_number,
    }
    rendered = _env.get_template(f"{language}/{kind.value}.txt.j2").render(context)
    subject, _, text = rendered.partition("\n")
    subject = subject.strip()
    html = _env.get_template(f"{language}/{kind.value}.html.j2").render(context, subject=subject)
    return RenderedEmail(
        language=language, subject=subject, text=text.strip() + "\n", html=html.strip() + "\n"
    )


class SmtpMailer:
    """Sends rendered emails through one SMTP server; SMTP errors propagate so the caller retries."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        timeout: float = 10,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._timeout = timeout

    def build_message(self, *, to: str, email: RenderedEmail, message_id: str) -> EmailMessage:
        """multipart/alternative (text, then HTML); the Message-ID depends only on `message_id`,
        so a retried send of the same notification can be recognised as a duplicate."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = email.subject
        message["Message-ID"] = message_id_header(message_id)
        message["Date"] = formatdate(usegmt=True)
        message.set_content(email.text, charset="utf-8")
        if email.html:  # outbox rows written before HTML was kept go out as plain text
            message.add_alternative(email.html, subtype="html", charset="utf-8")
        # After the parts: turning the message multipart moves Content-* headers into the first part.
        message["Content-Language"] = email.language
        return message

    async def send(
        self,
        *,
        to: str,
        email: RenderedEmail,
        message_id: str,
        accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Deliver one message. `accepted` runs as soon as the server has taken it (its 250 after
        DATA) and before QUIT: the caller records the delivery there, so a QUIT that fails or a
        connection that drops after the acceptance cannot make a retry send the message again."""
        message = self.build_message(to=to, email=email, message_id=message_id)
        # start_tls stays automatic: STARTTLS is used whenever the server offers it.
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._use_tls,
            timeout=self._timeout,
        )
        async with client:  # QUIT on the way out; its errors are ignored (the message is in)
            await client.send_message(message)
            if accepted is not None:
                await accepted()


def message_id_header(message_id: str) -> str:
    """`<id@orderflow>` for a notification id such as `ord_1.order_shipped:WH-A`: characters a
    Message-ID cannot hold are %-escaped, so every id stays distinct and the header stays valid."""
    return f"<{quote(message_id, safe=_ATEXT)}@orderflow>"
