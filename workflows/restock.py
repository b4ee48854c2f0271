"""RestockWorkflow: the durable restock dispatcher, one per task queue, fed by `stock_arrived` signals.

The API signals-with-start it whenever stock grows. It gathers the SKUs and runs one sweep at a time
(an activity that sends each waiting order the `restock` update, highest priority first); SKUs that
arrive during a sweep wait for the next. A failed sweep never fails the dispatcher: its SKUs go back
to the queue and are swept again after a back-off timer. It continues as new every
`batches_per_run` sweeps (or when Temporal suggests it), carrying the SKUs not swept yet.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.restock import RestockActivities
    from domain.restock import (
        RestockBatch,
        RestockDispatch,
        RestockDispatcherView,
        RestockOutcome,
        StockArrived,
        merge_skus,
        skus_text,
    )

# A sweep waits on each order's lock in turn: generous overall, a dead worker is seen by its heartbeat.
SWEEP_TIMEOUT = timedelta(minutes=30)
SWEEP_HEARTBEAT = timedelta(seconds=30)
SWEEP_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))
RETRY_FIRST = timedelta(minutes=1)
RETRY_AT_MOST = timedelta(minutes=30)


def retry_after(failures: int) -> timedelta:
    """Back-off after `failures` failed sweeps in a row: 1, 2, 4 ... minutes, at most 30."""
    return min(RETRY_FIRST * (1 << min(max(failures - 1, 0), 10)), RETRY_AT_MOST)


@workflow.defn(name="RestockDispatcher")
class RestockWorkflow:
    @workflow.init
    def __init__(self, start: RestockDispatch) -> None:
        self._pending = list(start.pending)
        self._sweeping: list[str] = []
        self._sweeps = start.sweeps
        self._failures = start.failures  # in a row; reset by a sweep that worked
        self._last: RestockOutcome | None = start.last
        self._last_error: str | None = None

    @workflow.signal
    def stock_arrived(self, arrived: StockArrived) -> None:
        self._pending = merge_skus(self._pending, arrived.skus)

    @workflow.query
    def view(self) -> RestockDispatcherView:
        return RestockDispatcherView(
            pending=self._pending,
            sweeping=self._sweeping,
            sweeps=self._sweeps,
            failures=self._failures,
            last=self._last,
            last_error=self._last_error,
        )

    @workflow.run
    async def run(self, start: RestockDispatch) -> None:
        batches = 0
        while batches < start.batches_per_run and not workflow.info().is_continue_as_new_suggested():
            self._describe()
            await workflow.wait_condition(lambda: bool(self._pending))
            await self._sweep()
            batches += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            RestockDispatch(
                pending=self._pending,
                batches_per_run=start.batches_per_run,
                sweeps=self._sweeps,
                failures=self._failures,
                last=self._last,
            )
        )

    async def _sweep(self) -> None:
        """One sweep over the SKUs gathered so far; on failure they are put back and retried later."""
        self._sweeping, self._pending = self._pending, []
        self._describe()
        try:
            self._last = await workflow.execute_activity_method(
                RestockActivities.dispatch_restock,
                RestockBatch(sweep_id=str(workflow.uuid4()), skus=self._sweeping),
                start_to_close_timeout=SWEEP_TIMEOUT,
                heartbeat_timeout=SWEEP_HEARTBEAT,
                retry_policy=SWEEP_RETRY,
                summary=f"wake orders waiting for {skus_text(self._sweeping)}",
            )
        except ActivityError as err:
            self._pending = merge_skus(self._sweeping, self._pending)
            self._sweeping = []
            self._failures += 1
            self._last_error = str(err.cause or err)
            wait = retry_after(self._failures)
            workflow.logger.warning(
                "restock sweep failed (%s in a row), retrying in %s: %s",
                self._failures,
                wait,
                self._last_error,
            )
            self._describe(f"Last sweep failed: {self._last_error}. Retrying in {wait}.")
            await workflow.sleep(wait, summary="retry the restock sweep")
            return
        self._sweeping = []
        self._sweeps += 1
        self._failures = 0
        self._last_error = None

    def _describe(self, note: str = "") -> None:
        if self._sweeping:
            now = f"Waking orders waiting for {skus_text(self._sweeping)}, highest priority first."
        elif self._pending:
            now = f"Stock arrived for {skus_text(self._pending)}: sweeping next."
        else:
            now = "Waiting for stock to arrive (a `stock_arrived` signal)."
        last = ""
        if self._last is not None:
            last = (
                f" Last sweep ({skus_text(self._last.skus)}): {len(self._last.locked)} locked, "
                f"{len(self._last.still_short)} still short, {len(self._last.skipped)} skipped."
            )
        workflow.set_current_details(" ".join(part for part in (now + last, note) if part))
