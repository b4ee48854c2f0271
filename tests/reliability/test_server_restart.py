"""The Temporal dev server is stopped and restarted on the same SQLite file while 30 orders are in flight.

Our own `temporal server start-dev --db-filename tmp_path/temporal.db` on fixed loopback ports, the real
worker (`python worker.py`) as a subprocess that is never restarted, a throwaway PostgreSQL database.
Mid-flight the server gets SIGTERM; once it has exited it stays down for a few seconds (timers of the
unpaid orders fall due meanwhile), then starts again on the same file and ports. The orders are driven
on through the outage (calls retried until answered, tests/support/drivers.py says how). Afterwards: every
one of the 30 workflows is Completed in Temporal's visibility, each order in its expected final
state, the database consistent, and every mail the orders call for received once by the SMTP server
the worker sends through (a mail activity whose completion the stopped server never heard of is
retried and must find its outbox row marked); the worker process, never restarted, polled the new
server by itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.support.checks import outcome_problems
from tests.support.drivers import drive_all
from tests.support.plans import Plan, Scenario, make_plans
from tests.support.stack import Stack, running_stack

SEED = 20261122
MIX = {
    Scenario.COMPLETE: 16,
    Scenario.AUTO_COMPLETE: 4,
    Scenario.PAYMENT_TIMEOUT: 4,
    Scenario.CANCEL_UNPAID: 2,
    Scenario.CANCEL_PAID: 2,
    Scenario.OPERATOR_CANCEL_PAID: 2,
}
STOP_AT = 4.0  # seconds after driving starts; orders are placed over the first 3 s
DOWN_FOR = 5.0
WITHIN = 90.0


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as stack:
        yield stack


async def test_orders_survive_a_temporal_server_restart(stack: Stack) -> None:
    plans: list[Plan] = make_plans(random.Random(SEED), MIX, tag="restart", spread=3.0)
    assert len(plans) == 30
    outage: dict[str, object] = {}

    async def restart_server(open_orders: Callable[[], int]) -> None:
        await asyncio.sleep(STOP_AT)
        outage["open_orders"] = open_orders()
        outage["exit_code"] = await asyncio.to_thread(stack.server.stop, 15.0)
        stopped = time.monotonic()
        await asyncio.sleep(DOWN_FOR)
        stack.server.start()
        await stack.server.connect()
        outage["down_s"] = round(time.monotonic() - stopped, 1)
        # the worker process was never touched: it must find the new server by itself
        await stack.worker.wait_polling(stack.client, stack.task_queue, within=60.0)
        outage["worker_back_after_s"] = round(time.monotonic() - stopped, 1)

    run = await drive_all(stack, plans, restart_server, WITHIN, lambda: f"outage: {outage}")
    print(f"\n{len(plans)} orders through a Temporal restart in {run.elapsed:.1f} s; outage: {outage}")

    # the stop hit the orders in flight (a quick channel cancel may be over by then)
    assert isinstance(outage["open_orders"], int), outage
    assert outage["open_orders"] >= len(plans) - 5, outage
    assert outage["exit_code"] == 0, f"the dev server did not stop cleanly on SIGTERM: {outage}"
    assert stack.worker.starts == 1
    assert stack.worker.alive()

    query = f'TaskQueue = "{stack.task_queue}" AND ExecutionStatus = "Completed"'
    completed = 0
    for _ in range(50):  # visibility follows the close by a moment
        completed = (await stack.client.count_workflows(query)).count
        if completed == len(plans):
            break
        await asyncio.sleep(0.1)
    assert completed == len(plans), f"{completed} of {len(plans)} workflows Completed after the restart"
    problems = await outcome_problems(stack, plans, run)
    assert not problems, "\n".join(problems[:40])
