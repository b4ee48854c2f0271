"""InboxSweeper: the durable loop that applies webhook deliveries Temporal could not take when they came.

A delivery is stored before it is applied (app/channel_events.py); when the order service did not take
it in the request (Temporal down, no worker), its row stays `received`. Every worker start-up
signals-with-start this workflow, once per task queue; it sweeps those rows (an activity), then waits a
minute, or less when a round left some. A failed round never fails the sweeper. It continues as new every
`rounds_per_run` rounds (or when Temporal suggests it), carrying its totals.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.models import Model
    from pydantic import Field

SWEEP_ACTIVITY = "sweep_inbox"  # activities/inbox.py; by name: that module reaches the database tables
ROUND_TIMEOUT = timedelta(minutes=10)  # up to 50 deliveries, each bounded by the order service's answer
ROUND_HEARTBEAT = timedelta(minutes=1)
ROUND_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=5))
EVERY = timedelta(minutes=1)
AFTER_FAILURE = timedelta(minutes=1)
SOON = timedelta(seconds=10)  # some deliveries were still not taken: the order service is catching up


def inbox_sweeper_id(task_queue: str) -> str:
    return f"inbox-sweeper-{task_queue}"


class InboxSweep(Model):
    """The sweeper's start (and continue-as-new) argument."""

    rounds_per_run: int = 500
    applied: int = 0  # deliveries taken out of `received` so far


class WakeSweeper(Model):
    pass


class SweepRound(Model):
    """One round: deliveries received longer ago than `settle` (the request itself may still apply
    younger ones), at most `limit`."""

    settle: timedelta = timedelta(seconds=30)
    limit: int = Field(default=50, ge=1, le=500)


class SweepOutcome(Model):
    tried: int
    left: int  # still `received` after the round: the order service did not take them


def next_round_in(outcome: SweepOutcome | None) -> timedelta:
    if outcome is None:
        return AFTER_FAILURE
    return SOON if outcome.left or outcome.tried >= SweepRound().limit else EVERY


@workflow.defn(name="InboxSweeper")
class InboxSweeperWorkflow:
    @workflow.init
    def __init__(self, start: InboxSweep) -> None:
        self._applied = start.applied
        self._rounds = 0
        self._woken = False
        self._last_error: str | None = None

    @workflow.signal
    def wake(self, _: WakeSweeper) -> None:
        self._woken = True

    @workflow.run
    async def run(self, start: InboxSweep) -> None:
        while self._rounds < start.rounds_per_run and not workflow.info().is_continue_as_new_suggested():
            self._woken = False
            outcome = await self._round()
            self._rounds += 1
            wait = next_round_in(outcome)
            workflow.set_current_details(
                f"{self._applied} webhook deliveries applied after the order service could not take them "
                f"at once. {self._last_error or ''} Next sweep in {int(wait.total_seconds())} s, or when a "
                "worker starts."
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._woken, timeout=wait, timeout_summary="next sweep")
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(InboxSweep(rounds_per_run=start.rounds_per_run, applied=self._applied))

    async def _round(self) -> SweepOutcome | None:
        try:
            outcome: SweepOutcome = await workflow.execute_activity(
                SWEEP_ACTIVITY,
                SweepRound(),
                result_type=SweepOutcome,
                start_to_close_timeout=ROUND_TIMEOUT,
                heartbeat_timeout=ROUND_HEARTBEAT,
                retry_policy=ROUND_RETRY,
                summary="apply webhook deliveries not applied yet",
            )
        except ActivityError as err:
            self._last_error = f"The last sweep failed: {err.cause or err}."
            workflow.logger.warning("inbox sweep failed: %s", self._last_error)
            return None
        self._last_error = None
        self._applied += outcome.tried - outcome.left
        return outcome
