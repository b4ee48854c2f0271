"""Where others see the order: the read model (an activity per change), the Web UI's current
details and the search attributes; a read-model write that fails is tried again, never fatal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities
    from core.metrics import PROJECTION_FAILURES
    from domain.models import OrderView

    from workflows import presentation
    from workflows import search_attributes as sa
    from workflows.deadlines import Deadline
    from workflows.state import LiveOrder
    from workflows.steps import ACTIVITY_TIMEOUT, failure_reason

PROJECTION_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=10))
# A read-model write that failed is tried again after 1 min, doubling to 1 h, until it succeeds.
PROJECTION_CATCH_UP_FIRST = timedelta(minutes=1)
PROJECTION_CATCH_UP_MAX = timedelta(hours=1)


class Projection:
    def __init__(self, state: LiveOrder, priority: Priority) -> None:
        self._state = state
        self._priority = priority
        self.lag: timedelta | None = None  # set while the read model is behind
        self._projected: OrderView | None = None  # the last view the read model took
        self._published_attributes: dict[str, Any] = {}

    async def publish(self, view: OrderView) -> None:
        """Project the view to the read model and show the Web UI where the order stands.

        A read-model write that fails never stops the order: it is tried again by a deadline (1 min
        doubling to 1 h) until it goes through; meanwhile the row says it lags (services/orders.py)."""
        state = self._state
        if view == self._projected and workflow.patched("publish-once-per-command"):
            return  # nothing changed since the last read-model write (e.g. a refused command)
        upcoming = state.deadlines.next()
        next_deadline = (upcoming[0].label(state.policy), upcoming[1]) if upcoming else None
        workflow.set_current_details(presentation.current_details(view, next_deadline))
        # Warehouses (a keyword list) replaced the Warehouse label; recorded histories upserted the label.
        warehouse_list = workflow.patched("warehouses-keyword-list")
        self._upsert_search_attributes(presentation.search_attributes(view, warehouse_list=warehouse_list))
        try:
            if workflow.patched("projection-as-activity"):
                # A regular activity: a local one could outlive a workflow task the server gave up on.
                await workflow.execute_activity_method(
                    OrderActivities.project_order,
                    view,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=PROJECTION_RETRY,
                    summary="project order to read model",
                    priority=self._priority,
                )
            else:  # orders started before: their histories hold local-activity markers
                await workflow.execute_local_activity_method(
                    OrderActivities.project_order,
                    view,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=PROJECTION_RETRY,
                    summary="project order to read model",
                )
        except Exception as err:  # whatever the read model says, the order goes on
            cause = err.cause if isinstance(err, ActivityError) and err.cause else err
            lag = self.lag
            self.lag = PROJECTION_CATCH_UP_FIRST if lag is None else min(lag * 2, PROJECTION_CATCH_UP_MAX)
            state.deadlines.arm(Deadline.PROJECT, workflow.now() + self.lag)
            failures = workflow.metric_meter().create_counter(
                PROJECTION_FAILURES, "Read-model writes that failed and will be tried again", "1"
            )
            failures.add(1)
            workflow.logger.warning(
                "projection_failed", extra={"order_id": state.order_id, "error": failure_reason(cause)}
            )
            return
        self._projected = view
        if self.lag is not None:
            self.lag = None
            state.deadlines.disarm(Deadline.PROJECT)

    def _upsert_search_attributes(self, wanted: dict[str, Any]) -> None:
        """Upsert only what changed since the last time: fewer history events per order."""
        changed = {k: v for k, v in wanted.items() if self._published_attributes.get(k, ...) != v}
        if not changed:
            return
        keys = {key.name: key for key in sa.ALL}
        workflow.upsert_search_attributes(
            [keys[k].value_set(v) if v is not None else keys[k].value_unset() for k, v in changed.items()]
        )
        self._published_attributes.update(changed)
