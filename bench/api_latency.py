"""API latency: POST /orders at a steady rate, against starting the workflow with the client directly.

    python -m bench.api_latency [--rate 4] [--seconds 15]

One process runs a Temporal dev server (in memory), the orderflow worker and the FastAPI app
(create_app, driven in-process through httpx.ASGITransport with a real API key) on a throwaway
PostgreSQL database. Three ways to create an order, each at `--rate` requests per second for
`--seconds`, one after another (open loop: a request is sent on schedule even when earlier ones
have not answered, and its latency counts from its scheduled time, so a stall is not hidden):

1. `client.start_workflow` (baseline): returns once the server has recorded the start; the order
   is placed (stock reserved, payment deadline set) afterwards, in the background.
2. `client.execute_update_with_start_workflow(placed)`: what the API gateway does; returns once the
   order is placed, so it includes the reserve_stock activity and the read-model projection.
3. `POST /orders`: the whole API: API-key check, the channel-key claim in PostgreSQL, then 2.,
   and the JSON response.

Between runs the benchmark waits (untimed) until every order of the run is placed, so each run
starts on an idle worker. How to read it: the ratios divide each percentile by the baseline's;
`POST /orders` over `update-with-start` is the API's own cost, `update-with-start` over
`start_workflow` the cost of answering only once the order is really placed.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from api.main import create_app
from bench import harness
from core.config import Settings
from domain.access import Role
from domain.models import OrderView, StartOrder
from services.auth import ApiKeyService
from worker import build_worker
from workflows.order import OrderWorkflow

Handle = WorkflowHandle[OrderWorkflow, OrderView]


@dataclass
class Run:
    name: str
    latencies: list[float]  # seconds, from each request's scheduled send time
    elapsed: float
    machine_cpu: float

    def p(self, percentile: float) -> float:
        return harness.percentile(self.latencies, percentile) * 1000


async def steady(name: str, rate: float, seconds: float, call: Callable[[], Awaitable[Any]]) -> Run:
    """Call `call` `rate` times a second for `seconds`, on schedule, whatever the answers take."""
    loop = asyncio.get_running_loop()
    count = round(rate * seconds)
    cpu, first = harness.CpuMeter(), loop.time() + 0.05

    async def one(number: int) -> float:
        due = first + number / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        await call()
        return loop.time() - due

    latencies = await asyncio.gather(*(one(number) for number in range(count)))
    return Run(name, list(latencies), loop.time() - first, cpu.machine_percent())


def start_order(settings: Settings) -> tuple[str, StartOrder]:
    order_id = f"ord_{uuid.uuid4().hex[:16]}"
    start = StartOrder(order_id=order_id, order=harness.place_order("api"), policy=settings.order_policy())
    return f"order-{order_id}", start


async def main() -> int:
    parser = argparse.ArgumentParser(description="POST /orders latency vs client.start_workflow.")
    parser.add_argument("--rate", type=float, default=4, help="requests per second (default 4)")
    parser.add_argument("--seconds", type=float, default=15, help="seconds per run (default 15)")
    args = parser.parse_args()
    harness.quiet_logs()

    with harness.throwaway_postgres("api") as url, harness.stocked_engine(url) as engine:
        async with harness.dev_server() as env:
            client: Client = env.client
            settings = harness.bench_settings(url, temporal_address=client.service_client.config.target_host)
            key, _ = ApiKeyService(engine).create("bench@channel", Role.INTEGRATION)
            app = create_app(settings)
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                build_worker(client, settings, engine),
                httpx.AsyncClient(
                    transport=transport,
                    base_url="http://bench",
                    headers={"authorization": f"Bearer {key}"},
                    timeout=60,
                ) as http,
            ):
                started: list[Handle] = []

                async def start_workflow() -> None:
                    workflow_id, start = start_order(settings)
                    started.append(
                        await client.start_workflow(
                            OrderWorkflow.run, start, id=workflow_id, task_queue=settings.task_queue
                        )
                    )

                async def update_with_start() -> None:
                    workflow_id, start = start_order(settings)
                    operation = WithStartWorkflowOperation(
                        OrderWorkflow.run,
                        start,
                        id=workflow_id,
                        task_queue=settings.task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    )
                    await client.execute_update_with_start_workflow(
                        OrderWorkflow.placed, start_workflow_operation=operation
                    )

                async def post_order() -> None:
                    body = harness.place_order("api").model_dump(mode="json")
                    response = await http.post("/orders", json=body)
                    if response.status_code != 201:
                        raise RuntimeError(f"POST /orders: {response.status_code} {response.text}")

                async def placed() -> None:
                    """Untimed: wait for the background placements start_workflow left behind."""
                    await asyncio.gather(*(h.execute_update(OrderWorkflow.placed) for h in started))
                    started.clear()

                for warm_up in (start_workflow, update_with_start, post_order):
                    await asyncio.gather(*(warm_up() for _ in range(5)))
                await placed()

                runs: list[Run] = []
                for name, call in (
                    ("client.start_workflow", start_workflow),
                    ("update-with-start (placed)", update_with_start),
                    ("POST /orders (API, in-process)", post_order),
                ):
                    runs.append(await steady(name, args.rate, args.seconds, call))
                    await placed()

    baseline = runs[0]
    harness.print_table(
        f"Order creation latency at {args.rate:g} per second for {args.seconds:g} s each "
        f"({round(args.rate * args.seconds)} requests); baseline = client.start_workflow",
        ["how", "requests", "p50 ms", "p99 ms", "max ms", "p50 ratio", "p99 ratio", "machine cpu %"],
        [
            [
                run.name,
                len(run.latencies),
                run.p(50),
                run.p(99),
                run.p(100),
                harness.ratio(run.p(50), baseline.p(50)),
                harness.ratio(run.p(99), baseline.p(99)),
                run.machine_cpu,
            ]
            for run in runs
        ],
    )
    print(f"machine cpu %: all {harness.cpus()} cores, 100 = all busy (server, PostgreSQL, this process)")
    return 0


if __name__ == "__main__":
    harness.run(main)
