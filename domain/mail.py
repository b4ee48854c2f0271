"""Mail dispatch types: the dispatcher's carried state, one round's result, and what it shows."""

from __future__ import annotations

from pydantic import Field

from domain.models import Model


def mail_dispatcher_id(task_queue: str) -> str:
    """One mail dispatcher per task queue: the workflow id every worker start-up names."""
    return f"mail-dispatcher-{task_queue}"


class WakeMail(Model):
    """Signal: look at the outbox now (a worker started, perhaps with SMTP newly configured)."""


class MailRound(Model):
    """One round: send at most `limit` due outbox rows, oldest first."""

    limit: int = Field(default=50, ge=1, le=500)


class MailOutcome(Model):
    """What one round did. `smtp_configured` False: nothing can be sent until a worker has SMTP."""

    smtp_configured: bool
    sent: int = 0
    failed: int = 0
    given_up: int = 0
    more_due: bool = False  # the round stopped at its limit with more rows waiting
    last_error: str | None = None


class MailDispatch(Model):
    """The dispatcher's start (and continue-as-new) input: totals carried from earlier runs."""

    rounds_per_run: int = Field(default=500, ge=1)
    sent: int = 0
    given_up: int = 0
    last: MailOutcome | None = None


class MailDispatcherView(Model):
    """Query answer: totals since the dispatcher first started and the latest round."""

    sent: int
    given_up: int
    rounds: int
    last: MailOutcome | None
    last_error: str | None
