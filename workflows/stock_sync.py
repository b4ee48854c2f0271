"""StockSync: pushes sellable stock to the shops, one per task queue, coalescing changes.

Every worker start-up starts it unless it runs (like the mail dispatcher). It loops: one round (an
activity that sends each shop, once, every SKU whose stock changed since that shop's cursor, with
max(0, sellable - the shop's stock buffer)), then waits `every` (30 s): changes within that window
are one push with the final figure; a figure already pushed is not sent again. A shop that refuses
keeps its cursor, so its pending pushes resume once it is fixed. A failed round never fails the sync.
It continues as new when Temporal suggests it, carrying the cursors and the figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.channels import ChannelActivities
    from domain.effects import StockSweep

ROUND_TIMEOUT = timedelta(minutes=10)
ROUND_HEARTBEAT = timedelta(minutes=1)
ROUND_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=5))
HISTORY_LIMIT = 5_000


def stock_sync_id(task_queue: str) -> str:
    """One stock sync per task queue: the workflow id every worker start-up names."""
    return f"stock-sync-{task_queue}"


@workflow.defn(name="StockSync")
class StockSyncWorkflow:
    @workflow.init
    def __init__(self, start: StockSweep) -> None:
        self._cursors: dict[str, datetime] = dict(start.cursors)
        self._figures: dict[str, dict[str, int]] = dict(start.figures)
        self.pushed = 0
        self.last_notes: list[str] = []

    @workflow.query
    def cursors(self) -> dict[str, datetime]:
        """Per shop, the latest stock change pushed to it."""
        return dict(self._cursors)

    @workflow.run
    async def run(self, start: StockSweep) -> None:
        while True:
            await self._round(start.every)
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT:
                break
            await workflow.sleep(start.every, summary="gather stock changes to push together")
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(StockSweep(cursors=self._cursors, every=start.every, figures=self._figures))

    async def _round(self, every: timedelta) -> None:
        try:
            swept = await workflow.execute_activity_method(
                ChannelActivities.push_stock_changes,
                StockSweep(cursors=self._cursors, every=every, figures=self._figures),
                start_to_close_timeout=ROUND_TIMEOUT,
                heartbeat_timeout=ROUND_HEARTBEAT,
                retry_policy=ROUND_RETRY,
                summary="push changed stock to the shops",
            )
        except ActivityError as err:
            workflow.logger.warning("stock push round failed: %s", err.cause or err)
            workflow.set_current_details(f"The last round failed: {err.cause or err}. Tried again shortly.")
            return
        self._cursors = dict(swept.cursors)
        self._figures = dict(swept.figures)
        self.pushed += swept.pushed
        self.last_notes = list(swept.notes)
        said = "; ".join(swept.notes) or "every shop is up to date"
        workflow.set_current_details(f"{self.pushed} stock level(s) pushed so far. Last round: {said}.")
