"""Customer notification activity: write the message to the outbox once, then mail it."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from temporalio import activity

from core.metrics import NOTIFICATIONS_SENT
from domain.notifications import Notify
from services.email import SmtpMailer, render_email
from services.mail_queue import MailQueue
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
        queue: MailQueue | None = None,
    ) -> None:
        self._outbox = outbox
        self._mailer = mailer
        self._shop_name = shop_name
        self._pay_url_template = pay_url_template
        self._queue = queue

    @activity.defn
    async def notify_customer(self, notify: Notify) -> bool:
        """True when the mail left now; False when an earlier attempt sent it or SMTP is off.

        At least once, and once unless a crash, a lost connection or a failed commit falls between
        the server's acceptance and our mark. The outbox row is marked sent the moment the server answers 250
        to DATA (before QUIT), and a retry that finds the mark sends nothing. A retry that finds
        no mark sends again, deliberately: the earlier attempt may have died before DATA, and a
        shipping or cancellation notice that never arrives is worse than a second copy. That
        copy carries the same Message-ID, by which mail systems and the customer's client can
        recognise it; SMTP offers no idempotency key to do better.
        """
        email = render_email(
            notify,
            shop_name=self._shop_name,
            pay_url=self._pay_url_template.format(order_id=notify.order_id),
        )
        entry = await asyncio.to_thread(
            self._outbox.record,
            order_id=notify.order_id,
            kind=notify.key,
            recipient=notify.customer.email,
            language=email.language,
            subject=email.subject,
            body_text=email.text,
            body_html=email.html,
        )
        if entry.sent_at is not None or self._mailer is None:
            return False
        # The mail dispatcher (workflows/mail.py) may be sending this row right now: whoever claims
        # it sends it. A claim this attempt cannot take means it is sent, given up, or in other hands.
        # Every attempt of this activity is the same holder, so a retry after a crash goes on at once.
        info = activity.info()
        holder = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{info.workflow_id}/{info.activity_id}"))
        if self._queue is not None and not await asyncio.to_thread(
            self._queue.claim, notify.order_id, notify.key, holder
        ):
            return False
        message_id = f"{notify.order_id}.{notify.key}"
        attempt = activity.info().attempt
        if attempt > 1:
            # An earlier attempt failed or died unmarked; if it died after the server accepted
            # the message, this copy is a duplicate under the same Message-ID.
            log.info(
                "customer_notification_resend", order_id=notify.order_id, kind=notify.key, attempt=attempt
            )

        async def mark_sent() -> None:
            await asyncio.to_thread(self._outbox.mark_sent, notify.order_id, notify.key)

        try:
            await self._mailer.send(
                to=notify.customer.email, email=email, message_id=message_id, accepted=mark_sent
            )
        except Exception as err:
            if self._queue is not None:  # the next attempt, or the dispatcher, may have it at once
                await asyncio.to_thread(
                    self._queue.release, notify.order_id, notify.key, holder, str(err) or repr(err)
                )
            raise
        sent = activity.metric_meter().create_counter(NOTIFICATIONS_SENT, "Customer emails sent", "1")
        sent.add(1, {"kind": notify.kind.value})
        log.info("customer_notified", order_id=notify.order_id, kind=notify.kind.value)
        return True
