"""The baseline workflow: nothing but N no-op activities and M no-op local activities, one after another.

It is what an order costs Temporal and the worker with orderflow's own work (database, updates,
timers, search attributes, payloads) taken out. Its worker is configured like worker.build_worker:
sync activities on a 32-thread pool.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TIMEOUT = timedelta(seconds=30)


class BareRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    activities: int
    local_activities: int = 0


@activity.defn
def noop() -> None:
    """Does nothing, on the activity thread pool like orderflow's sync activities."""


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, spec: BareRun) -> int:
        for _ in range(spec.activities):
            await workflow.execute_activity(noop, start_to_close_timeout=TIMEOUT)
        for _ in range(spec.local_activities):
            await workflow.execute_local_activity(noop, start_to_close_timeout=TIMEOUT)
        return spec.activities + spec.local_activities


def bare_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow],
        activities=[noop],
        activity_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="bare-activity"),
        max_concurrent_activities=32,
    )
