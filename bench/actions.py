"""Counting history events and (approximate) Temporal Cloud actions in one workflow history.

An action is Temporal Cloud's billing unit. We count, from the events of a closed history:

- 1 for the workflow start (WorkflowExecutionStarted);
- 1 per activity attempt (the `attempt` of each ActivityTaskStarted event: a retry is an action);
- 1 per workflow task that recorded local-activity markers (marker `core_local_activity`): Cloud
  counts all local activities completed in one workflow task as one action;
- 1 per timer started (TimerStarted, including `wait_condition(timeout=...)` timers later cancelled);
- 1 per signal received (WorkflowExecutionSignaled) and per accepted update
  (WorkflowExecutionUpdateAccepted; rejected updates leave no event and are not counted here);
- 1 per search-attribute upsert (UpsertWorkflowSearchAttributes) and per memo change
  (WorkflowPropertiesModified);
- 1 per child workflow started (StartChildWorkflowExecutionInitiated).

Not visible in a history and so not counted: queries (GET /orders/{id} of a live order is one),
activity heartbeats (orderflow sends none), rejected updates, and the workflow-task and
activity-task polling that Cloud does not bill. `set_current_details` travels on the workflow task
and costs no action.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from temporalio.client import WorkflowHistory

LOCAL_ACTIVITY_MARKER = "core_local_activity"
HISTORY_EVENT_LIMIT = 51_200  # Temporal terminates a workflow whose history reaches this many events


@dataclass(frozen=True)
class HistoryCounts:
    events: int = 0
    workflow_tasks: int = 0
    activities: int = 0
    activity_attempts: int = 0
    local_activities: int = 0
    local_activity_tasks: int = 0
    timers: int = 0
    signals: int = 0
    updates: int = 0
    search_attribute_upserts: int = 0
    memo_changes: int = 0
    children: int = 0

    @property
    def actions(self) -> int:
        return (
            1
            + self.activity_attempts
            + self.local_activity_tasks
            + self.timers
            + self.signals
            + self.updates
            + self.search_attribute_upserts
            + self.memo_changes
            + self.children
        )


def count(history: WorkflowHistory) -> HistoryCounts:
    events = history.events
    local_tasks = {
        e.marker_recorded_event_attributes.workflow_task_completed_event_id
        for e in events
        if e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    }
    return HistoryCounts(
        events=len(events),
        workflow_tasks=sum(e.HasField("workflow_task_completed_event_attributes") for e in events),
        activities=sum(e.HasField("activity_task_scheduled_event_attributes") for e in events),
        activity_attempts=sum(
            e.activity_task_started_event_attributes.attempt
            for e in events
            if e.HasField("activity_task_started_event_attributes")
        ),
        local_activities=sum(
            e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER for e in events
        ),
        local_activity_tasks=len(local_tasks),
        timers=sum(e.HasField("timer_started_event_attributes") for e in events),
        signals=sum(e.HasField("workflow_execution_signaled_event_attributes") for e in events),
        updates=sum(e.HasField("workflow_execution_update_accepted_event_attributes") for e in events),
        search_attribute_upserts=sum(
            e.HasField("upsert_workflow_search_attributes_event_attributes") for e in events
        ),
        memo_changes=sum(e.HasField("workflow_properties_modified_event_attributes") for e in events),
        children=sum(e.HasField("start_child_workflow_execution_initiated_event_attributes") for e in events),
    )


def mean(counts: list[HistoryCounts]) -> dict[str, float]:
    """Every field (and `actions`) averaged over several histories of the same path."""
    names = [f.name for f in fields(HistoryCounts)]
    averaged = {name: sum(getattr(c, name) for c in counts) / len(counts) for name in names}
    averaged["actions"] = sum(c.actions for c in counts) / len(counts)
    return averaged
