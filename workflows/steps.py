"""An order's steps: one activity run until it succeeds, retried with back-off while the order shows
what it waits on, or given up (StepFailed) when no retry can fix it; commands refused on failure."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.transitions import Refused

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# One round of quick attempts inside Temporal. When a round fails for a reason a retry may fix, the
# workflow shows the order waiting (view, read model, Web UI), answers queued commands as pending,
# and starts another round after a back-off: 30 s doubling to 10 min, for up to policy.step_patience.
STEP_ROUND = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=10))
STEP_BACKOFF_FIRST = timedelta(seconds=30)
STEP_BACKOFF_MAX = timedelta(minutes=10)

In = TypeVar("In")
Out = TypeVar("Out")
# A (sync) activity method: `InventoryActivities.lock_stock` takes the instance and one input model.
Activity = Callable[[Any, In], Out]


def failure_reason(cause: BaseException) -> str:
    if isinstance(cause, ApplicationError):
        return cause.message
    if isinstance(cause, TemporalTimeoutError):
        return "it did not answer in time"
    return str(cause) or type(cause).__name__


class StepFailed(Exception):
    """A step failed for good (a cause no retry fixes, or past the step patience)."""

    def __init__(self, step: str, summary: str, cause: BaseException) -> None:
        self.step = step
        self.summary = summary
        self.reason = failure_reason(cause)
        self.cause = cause
        self.handled = False  # True once the caller has put the order where it belongs
        super().__init__(f"{summary} failed: {self.reason}")


class StepInterrupted(Exception):
    """An automatic step waiting to retry gave way to a command (e.g. an operator's cancel)."""


@contextlib.contextmanager
def refusing(consequence: str, *, name_step: bool = True) -> Iterator[None]:
    """A command whose step fails for good is refused, saying what failed and what did not happen
    (`consequence`); the order stays where it was. `name_step=False`: the failure's reason only."""
    try:
        yield
    except StepFailed as failed:
        raise Refused(f"{failed if name_step else failed.reason}; {consequence}") from failed


@dataclass
class StepHooks:
    """What the steps need from the order: its words, its projection, its queue of commands."""

    patience: timedelta
    priority: Priority
    record: Callable[[str, str], None]
    publish: Callable[[], Awaitable[None]]
    has_commands: Callable[[], bool]
    answer_pending: Callable[[], None]  # the command under way hears "pending" now


class Steps:
    """Runs activities as steps, and knows which one the order waits on meanwhile."""

    def __init__(self, hooks: StepHooks) -> None:
        self._hooks = hooks
        self.waiting_on: str | None = None
        self.waiting_since: datetime | None = None
        self.blocked = False  # a command's own step is retrying: queued commands must wait

    async def run(
        self, step: str, method: Activity[In, Out], arg: In, summary: str, *, interruptible: bool = False
    ) -> Out:
        """Run one activity until it succeeds, or raise StepFailed when no retry can fix it.

        A failure a retry may fix (a lost connection, a time-out) is retried round after round with
        back-off while the order shows what it waits on; commands queued meanwhile are answered as
        pending (or, for an automatic step, go first: `interruptible`). After the step patience it
        gives up too. A failure no retry fixes (activities/errors.py) gives up at once."""
        hooks = self._hooks
        started = workflow.now()
        backoff = STEP_BACKOFF_FIRST
        while True:
            try:
                result: Out = await workflow.execute_activity_method(
                    method,
                    arg,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=STEP_ROUND,
                    summary=summary,
                    priority=hooks.priority,
                )
            except ActivityError as err:
                cause = err.cause or err
                permanent = isinstance(cause, ApplicationError) and cause.non_retryable
                if permanent or workflow.now() + backoff - started > hooks.patience:
                    self._stop_waiting()
                    raise StepFailed(step, summary, cause) from err
                self._start_waiting(summary, cause, blocking=not interruptible)
                await hooks.publish()
                if interruptible:
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(
                            hooks.has_commands, timeout=backoff, timeout_summary=f"retry: {summary}"
                        )
                    if hooks.has_commands():
                        self._stop_waiting()
                        raise StepInterrupted() from err
                else:
                    await workflow.sleep(backoff, summary=f"retry: {summary}")
                backoff = min(backoff * 2, STEP_BACKOFF_MAX)
                continue
            if self.waiting_on is not None:
                hooks.record("step_recovered", f"{summary} went through after retries")
                self._stop_waiting()
            return result

    def _start_waiting(self, summary: str, cause: BaseException, *, blocking: bool) -> None:
        if self.waiting_on != summary:
            self.waiting_on, self.waiting_since = summary, workflow.now()
            self._hooks.record(
                "step_waiting",
                f"{summary} failed ({failure_reason(cause)}); retrying with back-off, the order waits",
            )
        self.blocked = blocking
        # The command whose step (or follow-up step) this is gets its answer now: pending. Queued
        # commands wait only when they cannot go first (a blocking step).
        self._hooks.answer_pending()

    def _stop_waiting(self) -> None:
        self.waiting_on = self.waiting_since = None
        self.blocked = False
