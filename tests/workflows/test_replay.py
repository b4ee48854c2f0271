"""Replay every recorded history in tests/histories/ against today's OrderWorkflow.

A failure here means a workflow change would break orders already in flight: guard the change
with workflow.patched(...) instead of re-recording (see tests/histories/record.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

# The sandbox re-imports this module for the workflows defined below: pass project code through,
# as workflows/order.py does, or the sandbox gets second copies of the pydantic models.
with workflow.unsafe.imports_passed_through():
    from domain.models import OrderView, StartOrder
    from workflows.order import OrderWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"  # no .resolve(): the sandbox forbids it
RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    document = json.loads(path.read_text(encoding="utf-8"))
    return WorkflowHistory.from_json(document["workflow_id"], document["history"])


# Paths whose loss would leave a workflow code path unguarded (OrderWorkflow's composition refactor
# was checked against these, recorded from the code before it).
GUARDED = {
    "happy_path_v2",
    "hold_release",
    "hold_withdraws_shipment",
    "exception_restock",
    "split_order_v2",
    "cancel_failed_retry",
    "reassign_warehouse",
    "change_address",
    "retry_after_failed_step",
    "mark_shipped",
    "continue_as_new_run1",
    "continue_as_new",
}


def test_histories_are_recorded() -> None:
    assert RECORDED, f"no recorded histories in {HISTORIES}: run .venv/bin/python -m tests.histories.record"
    missing = GUARDED - {path.stem for path in RECORDED}
    assert not missing, f"recorded histories missing: {sorted(missing)} (see tests/histories/record.py)"


def test_a_continued_order_is_recorded_run_by_run() -> None:
    """Later runs start from the state the run before carried: replaying them proves it still loads."""
    runs = sorted(p.stem for p in RECORDED if p.stem.startswith("continue_as_new_run"))
    assert len(runs) >= 1
    for stem in runs:
        events = load(HISTORIES / f"{stem}.json").events
        assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes"), stem
    carried = load(HISTORIES / "continue_as_new.json").events[0]
    assert carried.workflow_execution_started_event_attributes.continued_execution_run_id


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays_on_current_workflow(path: Path) -> None:
    replayer = Replayer(workflows=[OrderWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(path))  # raises on nondeterminism
    assert result.replay_failure is None


@workflow.defn(name="OrderWorkflow")
class OrderWorkflowUnchanged(OrderWorkflow):
    """Control: a subclass registered the same way, with the same behaviour."""

    @workflow.run
    async def run(self, start: StartOrder) -> OrderView:
        return await super().run(start)


@workflow.defn(name="OrderWorkflow")
class OrderWorkflowWithNewFirstStep(OrderWorkflow):
    """The same workflow with one unguarded change: a timer before anything else happens."""

    @workflow.run
    async def run(self, start: StartOrder) -> OrderView:
        await workflow.sleep(timedelta(seconds=1), summary="a step recorded orders never took")
        return await super().run(start)


def replayer_for(cls: type) -> Replayer:
    return Replayer(workflows=[cls], data_converter=pydantic_data_converter)


@pytest.mark.parametrize("path", RECORDED[:1], ids=[p.stem for p in RECORDED[:1]])
async def test_replay_catches_a_change_that_would_break_orders_in_flight(path: Path) -> None:
    history = load(path)
    # The subclass mechanism itself replays green, so the failure below is the change alone.
    assert (await replayer_for(OrderWorkflowUnchanged).replay_workflow(history)).replay_failure is None

    with pytest.raises(workflow.NondeterminismError) as failure:
        await replayer_for(OrderWorkflowWithNewFirstStep).replay_workflow(history)
    # The recorded first command was the search-attribute upsert; the changed code starts a timer.
    assert "Nondeterminism error: Timer machine does not handle this event" in str(failure.value)
