"""History events and Temporal actions per order, counted from real histories.

    python -m bench.history [--orders 3]

Paths, each run `--orders` times one after another and averaged:
- happy path, on the dev server: placed with update-with-start, paid, shipped, in transit,
  delivered, receipt confirmed (the driver of bench/lifecycle.py, with an instant warehouse and carrier);
- unpaid -> cancelled, on the time-skipping server (days of timers pass in seconds): placed, three
  payment reminders at 1 h, 24 h and 72 h, auto-cancelled when the 5-day payment hold ends;
- baseline, on the dev server: BareWorkflow (bench/bare.py) running as many no-op activities and
  no-op local activities as the happy path does.

How to read it: `actions` follows bench/actions.py, whose docstring lists exactly what is counted
(an approximation of Temporal Cloud billing, from the history alone). Ratios divide an order's
figure by the bare workflow's. `% of limit` compares the events with the 51,200 events at which
Temporal terminates a workflow. The second table splits the actions by kind.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass

from temporalio.client import Client, WorkflowHistory

from bench import actions, harness
from bench.actions import HISTORY_EVENT_LIMIT, HistoryCounts
from bench.bare import BareRun, BareWorkflow, bare_worker
from bench.lifecycle import run_order
from core.config import Settings
from domain.models import OrderStatus, StartOrder
from worker import build_worker
from workflows.order import OrderWorkflow


@dataclass
class Path:
    name: str
    server: str
    counts: list[HistoryCounts]
    kilobytes: list[float]

    def mean(self, name: str) -> float:
        return actions.mean(self.counts)[name]

    def shown(self, name: str) -> int | float:
        """The mean as a whole number when every run agrees, else to one decimal."""
        value = self.mean(name)
        return int(value) if value == int(value) else round(value, 1)

    @property
    def spread(self) -> str:
        """The range of event counts, when the runs differ (workflow-task batching can vary)."""
        low, high = min(c.events for c in self.counts), max(c.events for c in self.counts)
        return f"{low}-{high}" if low != high else str(low)


def size_kb(history: WorkflowHistory) -> float:
    return sum(event.ByteSize() for event in history.events) / 1024


async def happy_path(client: Client, settings: Settings) -> WorkflowHistory:
    handle = await run_order(client, settings, harness.place_order("history"))
    return await handle.fetch_history()


async def unpaid_cancelled(client: Client, settings: Settings) -> WorkflowHistory:
    """Placed and never paid. Waiting for the result lets the time-skipping server jump its timers."""
    order_id = f"ord_{uuid.uuid4().hex[:16]}"
    handle = await client.start_workflow(
        OrderWorkflow.run,
        StartOrder(order_id=order_id, order=harness.place_order("unpaid"), policy=settings.order_policy()),
        id=f"order-{order_id}",
        task_queue=settings.task_queue,
    )
    await handle.execute_update(OrderWorkflow.placed)
    final = await handle.result()
    if final.status != OrderStatus.CANCELLED or final.reminders_sent != 3:
        raise RuntimeError(f"{order_id} ended {final.status.value} after {final.reminders_sent} reminders")
    return await handle.fetch_history()


async def bare(client: Client, task_queue: str, spec: BareRun) -> WorkflowHistory:
    handle = await client.start_workflow(
        BareWorkflow.run, spec, id=f"bare-{uuid.uuid4().hex[:16]}", task_queue=task_queue
    )
    await handle.result()
    return await handle.fetch_history()


def collect(name: str, server: str, histories: list[WorkflowHistory]) -> Path:
    return Path(name, server, [actions.count(h) for h in histories], [size_kb(h) for h in histories])


async def main() -> int:
    parser = argparse.ArgumentParser(description="History events and Temporal actions per order.")
    parser.add_argument("--orders", type=int, default=3, help="histories per path (default 3)")
    args = parser.parse_args()
    harness.quiet_logs()

    with harness.throwaway_postgres("history") as url, harness.stocked_engine(url) as engine:
        settings = harness.bench_settings(url)
        async with harness.dev_server() as env:
            client, bare_queue = env.client, f"{settings.task_queue}-bare"
            async with build_worker(client, settings, engine), bare_worker(client, bare_queue):
                happy = collect(
                    "happy path (completed)",
                    "dev",
                    [await happy_path(client, settings) for _ in range(args.orders)],
                )
                spec = BareRun(
                    activities=round(happy.mean("activities")),
                    local_activities=round(happy.mean("local_activities")),
                )
                baseline = collect(
                    f"bare: {spec.activities} no-op activities + {spec.local_activities} local",
                    "dev",
                    [await bare(client, bare_queue, spec) for _ in range(args.orders)],
                )
        async with harness.time_skipping_server() as env, build_worker(env.client, settings, engine):
            unpaid = collect(
                "unpaid -> cancelled (5-day hold)",
                "time-skipping",
                [await unpaid_cancelled(env.client, settings) for _ in range(args.orders)],
            )

    paths = [baseline, happy, unpaid]
    base_events, base_actions = baseline.mean("events"), baseline.mean("actions")
    harness.print_table(
        f"History per workflow (mean of {args.orders} each); baseline = bare workflow",
        [
            "path",
            "server",
            "events",
            "events ratio",
            "actions",
            "actions ratio",
            "history KB",
            "% of 51,200-event limit",
        ],
        [
            [
                p.name,
                p.server,
                p.spread,
                harness.ratio(p.mean("events"), base_events),
                p.shown("actions"),
                harness.ratio(p.mean("actions"), base_actions),
                sum(p.kilobytes) / len(p.kilobytes),
                f"{100 * p.mean('events') / HISTORY_EVENT_LIMIT:.2f}%",
            ]
            for p in paths
        ],
    )
    harness.print_table(
        "Actions by kind (see bench/actions.py); workflow tasks are shown but cost no action",
        [
            "path",
            "start",
            "activity attempts",
            "local-activity tasks (local activities)",
            "timers",
            "updates",
            "signals",
            "search-attr upserts",
            "= actions",
            "workflow tasks",
        ],
        [
            [
                p.name,
                1,
                p.shown("activity_attempts"),
                f"{p.shown('local_activity_tasks')} ({p.shown('local_activities')})",
                p.shown("timers"),
                p.shown("updates"),
                p.shown("signals"),
                p.shown("search_attribute_upserts"),
                p.shown("actions"),
                p.shown("workflow_tasks"),
            ]
            for p in paths
        ],
    )
    memo_or_children = sum(p.mean("memo_changes") + p.mean("children") for p in paths)
    if memo_or_children:
        print(f"also counted: memo changes and child workflows, {memo_or_children:.1f} in all")
    return 0


if __name__ == "__main__":
    harness.run(main)
