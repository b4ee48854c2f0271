"""Customer notification activity: write the message to the outbox once, then mail it."""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity

from core.metrics import NOTIFICATIONS_SENT
from domain.notifications import Notify
from services.email import SmtpMailer, render_email
from services.notifications import NotificationOutbox

log = structlog.get_logger(__name__)


class NotificationActivities:
    def __init__(
        self,
        outbox: NotificationOutbox,
        mailer: SmtpMailer | None,
        *,
        shop_name: str,
        pay_url_template: str,
        coupon_code: str | None = None,
    ) -> None:
        self._outbox = outbox
        self._mailer = mailer
        self._shop_name = shop_name
        self._pay_url_template = pay_url_template
        self._coupon_code = coupon_code

    @activity.defn
    async def notify_customer(self, notify: Notify) -> bool:
        """True when the mail left now; False when an earlier attempt sent it or SMTP is off."""
        email = render_email(
            notify,
            shop_name=self._shop_name,
            pay_url=self._pay_url_template.format(order_id=notify.order_id),
            coupon_code=self._coupon_code,
        )
        entry = await asyncio.to_thread(
            self._outbox.record,
            order_id=notify.order_id,
            kind=notify.key,
            recipient=notify.customer.email,
            language=email.language,
            subject=email.subject,
            body_text=email.text,
        )
        if entry.sent_at is not None or self._mailer is None:
            return False
        await self._mailer.send(
            to=notify.customer.email, email=email, message_id=f"{notify.order_id}.{notify.key}"
        )
        await asyncio.to_thread(self._outbox.mark_sent, notify.order_id, notify.key)
        sent = activity.metric_meter().create_counter(NOTIFICATIONS_SENT, "Customer emails sent", "1")
        sent.add(1, {"kind": notify.kind.value})
        log.info("customer_notified", order_id=notify.order_id, kind=notify.kind.value)
        return True
