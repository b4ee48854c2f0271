"""Lifecycle throughput: full orders per second against bare workflows on the same server and worker.

    python -m bench.lifecycle [--orders 60] [--concurrency 10]

One process runs a Temporal dev server (in memory), an in-process orderflow worker on a throwaway
PostgreSQL database, and a driver that plays the channel, the payment provider, the warehouse and
the carrier with no delay: each order is placed with update-with-start (as the API gateway does),
then paid, shipped, in transit, delivered and confirmed through updates, until its workflow
completes. `--concurrency` orders are in flight at any time.

The baseline is BareWorkflow (bench/bare.py) running exactly as many no-op activities and no-op
local activities as one order's history holds, on the same dev server, with a worker configured the
same way, at the same concurrency. It is measured first, then the orders.

How to read it: `per second` is completed workflows per wall-clock second over the whole run;
`ratio` is the order rate divided by the bare rate (0.25x: a full order costs four bare workflows).
The gap is orderflow's own work: six updates per order (six client round trips, each waiting for a
workflow task), PostgreSQL transactions in every activity, timers, search-attribute upserts and the
pydantic payloads. `cpu ms each` divides the CPU time used during the run by the workflows: the
worker's figure is this process (driver + worker), the machine's includes the Temporal server and
PostgreSQL; `machine busy %` near 100 means the run was CPU-bound on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from bench import actions, harness
from bench.bare import BareRun, BareWorkflow, bare_worker
from core.config import Settings
from domain.models import (
    ConfirmReceipt,
    ConfirmShipment,
    OrderStatus,
    OrderView,
    PlaceOrder,
    StartOrder,
    TrackingUpdate,
)
from worker import build_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]


async def run_order(client: Client, settings: Settings, placed: PlaceOrder) -> Handle:
    """One order from placement to completed; the warehouse and the carrier answer at once."""
    order_id = f"ord_{uuid.uuid4().hex[:16]}"
    start = WithStartWorkflowOperation(
        OrderWorkflow.run,
        StartOrder(order_id=order_id, order=placed, policy=settings.order_policy()),
        id=f"order-{order_id}",
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    view = await client.execute_update_with_start_workflow(
        OrderWorkflow.placed, start_workflow_operation=start
    )
    handle = await start.workflow_handle()
    view = await handle.execute_update(OrderWorkflow.pay, harness.payment_for(view))
    shipment = ConfirmShipment(carrier="DHL", tracking_number="JD0146000012345", warehouse=harness.WAREHOUSE)
    view = await handle.execute_update(OrderWorkflow.ship, shipment)
    at = view.updated_at
    await handle.execute_update(OrderWorkflow.track, TrackingUpdate(status="in_transit", at=at))
    await handle.execute_update(OrderWorkflow.track, TrackingUpdate(status="delivered", at=at))
    await handle.execute_update(OrderWorkflow.confirm_receipt, ConfirmReceipt())
    final = await handle.result()
    if final.status != OrderStatus.COMPLETED:
        raise RuntimeError(f"{order_id} ended {final.status.value}, not completed")
    return handle


async def run_bare(client: Client, task_queue: str, spec: BareRun) -> None:
    await client.execute_workflow(
        BareWorkflow.run, spec, id=f"bare-{uuid.uuid4().hex[:16]}", task_queue=task_queue
    )


@dataclass
class Run:
    elapsed: float  # wall-clock seconds for the whole run
    each: list[float]  # seconds from start to completion of every workflow
    process_cpu: float  # % of one core used by this process (driver + worker)
    machine_cpu: float  # % of all cores used by the machine (server and PostgreSQL included)

    def cpu_ms_each(self, percent: float, cores: int = 1) -> float:
        """CPU milliseconds per workflow, from a utilisation over the run."""
        return percent / 100 * cores * self.elapsed * 1000 / len(self.each)


async def measure(count: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> Run:
    """Run `one` `count` times, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)
    durations: list[float] = []

    async def timed() -> None:
        async with gate:
            watch = harness.Stopwatch()
            await one()
            durations.append(watch.elapsed)

    watch, cpu = harness.Stopwatch(), harness.CpuMeter()
    await asyncio.gather(*(timed() for _ in range(count)))
    return Run(watch.elapsed, durations, cpu.process_percent(), cpu.machine_percent())


async def main() -> int:
    parser = argparse.ArgumentParser(description="Full-lifecycle orders per second vs bare workflows.")
    parser.add_argument("--orders", type=int, default=60, help="workflows per run (default 60)")
    parser.add_argument("--concurrency", type=int, default=10, help="in flight at once (default 10)")
    args = parser.parse_args()
    harness.quiet_logs()

    with harness.throwaway_postgres("lifecycle") as url, harness.stocked_engine(url) as engine:
        async with harness.dev_server() as env:
            client, settings = env.client, harness.bench_settings(url)
            bare_queue = f"{settings.task_queue}-bare"
            async with build_worker(client, settings, engine), bare_worker(client, bare_queue):
                # Warm-up (sandbox imports, connection pools); the first order's history sizes the baseline.
                first = await run_order(client, settings, harness.place_order("warmup"))
                counts = actions.count(await first.fetch_history())
                spec = BareRun(activities=counts.activities, local_activities=counts.local_activities)
                await asyncio.gather(*(run_bare(client, bare_queue, spec) for _ in range(args.concurrency)))
                await asyncio.gather(
                    *(run_order(client, settings, harness.place_order("warmup")) for _ in range(4))
                )

                bare = await measure(
                    args.orders, args.concurrency, lambda: run_bare(client, bare_queue, spec)
                )
                orders = await measure(
                    args.orders,
                    args.concurrency,
                    lambda: run_order(client, settings, harness.place_order("lifecycle")),
                )

    bare_rate, order_rate = args.orders / bare.elapsed, args.orders / orders.elapsed
    rows = [
        (f"bare: {spec.activities} no-op activities + {spec.local_activities} no-op local", bare, "1.00x"),
        (
            "order: place, pay, ship, in transit, delivered, confirmed",
            orders,
            harness.ratio(order_rate, bare_rate),
        ),
    ]
    harness.print_table(
        f"Lifecycle throughput: {args.orders} workflows per run, {args.concurrency} in flight; "
        "dev server, worker and PostgreSQL on one machine",
        [
            "run",
            "workflows",
            "elapsed s",
            "per second",
            "ratio",
            "p50 s each",
            "p99 s each",
            "worker cpu ms each",
            "machine cpu ms each",
            "machine busy %",
        ],
        [
            [
                name,
                args.orders,
                run.elapsed,
                args.orders / run.elapsed,
                relative,
                harness.percentile(run.each, 50),
                harness.percentile(run.each, 99),
                run.cpu_ms_each(run.process_cpu),
                run.cpu_ms_each(run.machine_cpu, harness.cpus()),
                run.machine_cpu,
            ]
            for name, run, relative in rows
        ],
    )
    print(
        f"one order: {counts.events} history events, {counts.activities} activities, "
        f"{counts.local_activities} local activities, {counts.updates} updates, "
        f"{counts.workflow_tasks} workflow tasks"
    )
    print(
        "worker cpu: this process (driver + worker; one Python process uses at most about one core); "
        f"machine cpu: all {harness.cpus()} cores (Temporal server and PostgreSQL included)"
    )
    return 0


if __name__ == "__main__":
    harness.run(main)
