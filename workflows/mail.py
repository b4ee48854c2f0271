"""MailDispatcher: the durable sender of outbox mail nobody sent, one per task queue.

Every worker start-up signals-with-start it (`wake`), so it exists once and looks at the outbox as
soon as a worker, perhaps now with SMTP configured, comes up. It loops: one round (an activity that
gives up on mail older than ORDERS_MAIL_GIVE_UP_AFTER and sends a bounded batch of due rows, oldest
first), then a timer: at once when the batch was full, 1 minute after a failure, else 5 minutes. A
failed round never fails the dispatcher. It continues as new every `rounds_per_run` rounds (or when
Temporal suggests it), carrying its totals.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.mail import MailActivities
    from domain.mail import MailDispatch, MailDispatcherView, MailOutcome, MailRound, WakeMail

ROUND_TIMEOUT = timedelta(minutes=10)  # up to 50 mails, each with a 10 s SMTP time-out per step
ROUND_HEARTBEAT = timedelta(minutes=1)
ROUND_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=5))
AFTER_FAILURE = timedelta(minutes=1)
IDLE = timedelta(minutes=5)


def next_round_in(outcome: MailOutcome | None) -> timedelta:
    """How long to wait after a round: none when it stopped at its limit with more due, a minute
    after a failure (`None`: the round itself failed), else five minutes."""
    if outcome is None or outcome.failed:
        return AFTER_FAILURE
    return timedelta(0) if outcome.more_due else IDLE


@workflow.defn(name="MailDispatcher")
class MailDispatcherWorkflow:
    @workflow.init
    def __init__(self, start: MailDispatch) -> None:
        self._sent = start.sent
        self._given_up = start.given_up
        self._last: MailOutcome | None = start.last
        self._last_error: str | None = None
        self._rounds = 0
        self._woken = False

    @workflow.signal
    def wake(self, _: WakeMail) -> None:
        self._woken = True

    @workflow.query
    def view(self) -> MailDispatcherView:
        return MailDispatcherView(
            sent=self._sent,
            given_up=self._given_up,
            rounds=self._rounds,
            last=self._last,
            last_error=self._last_error,
        )

    @workflow.run
    async def run(self, start: MailDispatch) -> None:
        while self._rounds < start.rounds_per_run and not workflow.info().is_continue_as_new_suggested():
            self._woken = False
            outcome = await self._round()
            self._rounds += 1
            wait = next_round_in(outcome)
            if wait:
                self._describe(wait)
                with contextlib.suppress(TimeoutError):  # the timer ran out: no wake signal came
                    await workflow.wait_condition(
                        lambda: self._woken, timeout=wait, timeout_summary="next mail round"
                    )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            MailDispatch(
                rounds_per_run=start.rounds_per_run, sent=self._sent, given_up=self._given_up, last=self._last
            )
        )

    async def _round(self) -> MailOutcome | None:
        try:
            outcome = await workflow.execute_activity_method(
                MailActivities.dispatch_mail,
                MailRound(),
                start_to_close_timeout=ROUND_TIMEOUT,
                heartbeat_timeout=ROUND_HEARTBEAT,
                retry_policy=ROUND_RETRY,
                summary="send outbox mail nobody sent",
            )
        except ActivityError as err:
            self._last_error = str(err.cause or err)
            workflow.logger.warning("mail round failed: %s", self._last_error)
            return None
        self._sent += outcome.sent
        self._given_up += outcome.given_up
        self._last = outcome
        self._last_error = outcome.last_error
        return outcome

    def _describe(self, wait: timedelta) -> None:
        last = self._last
        if last is not None and not last.smtp_configured:
            now = "SMTP is not configured on the worker (ORDERS_SMTP_HOST): unsent mail waits in the outbox."
        elif self._last_error:
            now = f"The last send failed: {self._last_error}. Unsent mail stays queued."
        else:
            now = "The outbox is sent."
        workflow.set_current_details(
            f"{now} {self._sent} sent and {self._given_up} given up so far. "
            f"Next round in {int(wait.total_seconds() // 60)} min, or when a worker starts."
        )
