"""Mail dispatch activity: send outbox mail that was never sent (SMTP unset, or every retry failed)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import structlog
from aiosmtplib import (
    SMTPDataError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
)
from temporalio import activity

from core.metrics import MAIL_GIVEN_UP, NOTIFICATIONS_SENT
from domain.mail import MailOutcome, MailRound
from services.email import RenderedEmail, SmtpMailer
from services.mail_queue import MailQueue
from services.tables import Notification

log = structlog.get_logger(__name__)

# The server refused this one message: the next may go through. Anything else (no connection, a
# time-out, a dropped session) will fail the rest of the round too, so the round stops there.
MESSAGE_REFUSED = (SMTPRecipientsRefused, SMTPRecipientRefused, SMTPSenderRefused, SMTPDataError)


def message_kind(key: str) -> str:
    """The notification kind of an outbox key: `order_shipped:WH-A` -> `order_shipped`."""
    return key.split(":", 1)[0]


class MailActivities:
    def __init__(
        self,
        queue: MailQueue,
        mailer: SmtpMailer | None,
        *,
        give_up_after: timedelta,
        settled_for: timedelta = timedelta(minutes=1),
    ) -> None:
        self._queue = queue
        self._mailer = mailer
        self._give_up_after = give_up_after
        self._settled_for = settled_for

    @activity.defn
    async def dispatch_mail(self, batch: MailRound) -> MailOutcome:
        """Give up on mail older than ORDERS_MAIL_GIVE_UP_AFTER, then send the oldest due rows, each
        claimed first (a row the order's own send or another dispatcher holds is skipped) and marked
        sent at the server's 250, so each Message-ID goes out once. Failures stay queued, counted."""
        given_up = await asyncio.to_thread(self._queue.give_up_older_than, self._give_up_after)
        for row in given_up:
            log.warning(
                "mail_given_up",
                order_id=row.order_id,
                kind=row.kind,
                written=row.created_at.isoformat(),
                attempts=row.attempts,
                last_error=row.last_error,
                give_up_after=str(self._give_up_after),
            )
            counter = activity.metric_meter().create_counter(MAIL_GIVEN_UP, "Customer emails given up", "1")
            counter.add(1, {"kind": message_kind(row.kind)})
        if self._mailer is None:
            return MailOutcome(smtp_configured=False, given_up=len(given_up))
        due = await asyncio.to_thread(self._queue.due, settled_for=self._settled_for, limit=batch.limit + 1)
        outcome = MailOutcome(smtp_configured=True, given_up=len(given_up), more_due=len(due) > batch.limit)
        sent = failed = 0
        last_error: str | None = None
        for row in due[: batch.limit]:
            activity.heartbeat(sent + failed)
            result = await self._send(self._mailer, row)
            if result is True:
                sent += 1
            elif isinstance(result, Exception):
                failed += 1
                last_error = str(result) or repr(result)
                if not isinstance(result, MESSAGE_REFUSED):
                    outcome = outcome.model_copy(update={"more_due": False})
                    break
        outcome = outcome.model_copy(update={"sent": sent, "failed": failed, "last_error": last_error})
        if outcome.sent or outcome.failed or outcome.given_up:
            log.info("mail_dispatched", **outcome.model_dump(exclude={"smtp_configured"}))
        return outcome

    async def _send(self, mailer: SmtpMailer, row: Notification) -> bool | Exception:
        """Claim and send one row: True when the server took it, False when another sender holds it
        (or sent it meanwhile), else the error (the row stays queued, the failure counted)."""
        holder = str(uuid.uuid4())
        claimed = await asyncio.to_thread(self._queue.claim, row.order_id, row.kind, holder)
        if not claimed:
            return False
        email = RenderedEmail(
            language=row.language, subject=row.subject, text=row.body_text, html=row.body_html or ""
        )

        async def mark_sent() -> None:
            await asyncio.to_thread(self._queue.mark_sent, row.order_id, row.kind)

        try:
            await mailer.send(
                to=row.recipient, email=email, message_id=f"{row.order_id}.{row.kind}", accepted=mark_sent
            )
        except (SMTPException, OSError) as err:
            await asyncio.to_thread(
                self._queue.release, row.order_id, row.kind, holder, str(err) or repr(err)
            )
            log.warning("mail_send_failed", order_id=row.order_id, kind=row.kind, error=str(err) or repr(err))
            return err
        counter = activity.metric_meter().create_counter(NOTIFICATIONS_SENT, "Customer emails sent", "1")
        counter.add(1, {"kind": message_kind(row.kind)})
        log.info("customer_notified", order_id=row.order_id, kind=row.kind, by="mail_dispatcher")
        return True
