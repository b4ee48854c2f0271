"""The worker is SIGKILLed 4 times while 100 orders move through their lifecycle, and restarted each time.

Our own `temporal server start-dev` (SQLite file in tmp_path), the real worker (`python worker.py`,
ORDERS_* settings) as a subprocess, a throwaway PostgreSQL database. A seeded killer SIGKILLs the
worker's process group at moments drawn from SEED while the orders are driven (tests/reliability
says how, and why the unpaid ones carry compressed timers). Afterwards every order must be closed
in its expected final state, the stock ledger must hold each move once with locked and reserved back
at 0 and on_hand down by exactly what shipped, and the outbox must hold each message once: exactly
the three reminders and the cancellation for each unpaid order, a "shipped" for each shipped one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.reliability import Plan, Scenario, Stack, drive_all, make_plans, outcome_problems, running_stack

SEED = 20261121
MIX = {
    Scenario.COMPLETE: 45,
    Scenario.AUTO_COMPLETE: 10,
    Scenario.PAYMENT_TIMEOUT: 15,
    Scenario.CANCEL_UNPAID: 10,
    Scenario.CANCEL_PAID: 10,
    Scenario.OPERATOR_CANCEL_UNPAID: 5,
    Scenario.OPERATOR_CANCEL_PAID: 5,
}
KILLS = 4
FIRST_KILL = (2.0, 5.0)  # seconds after driving starts; orders are placed over the first 8 s
KILL_GAP = (4.0, 7.0)  # the restarted worker works a while before the next kill
# A killed worker's activities are retried after their 30 s start-to-close timeout, so the last
# kill at <= 26 s leaves everything done well before this.
WITHIN = 120.0


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as stack:
        yield stack


async def test_orders_survive_repeated_worker_sigkill(stack: Stack) -> None:
    rng = random.Random(SEED)
    plans: list[Plan] = make_plans(rng, MIX, tag="crash", spread=8.0)
    assert len(plans) == 100
    moments = [rng.uniform(*FIRST_KILL)]
    while len(moments) < KILLS:
        moments.append(moments[-1] + rng.uniform(*KILL_GAP))
    downtimes = [rng.uniform(0.2, 2.0) for _ in range(KILLS)]
    kills: list[tuple[float, int]] = []  # (seconds since start, orders open then)

    async def killer(open_orders: Callable[[], int]) -> None:
        started = time.monotonic()
        for moment, down in zip(moments, downtimes, strict=True):
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            kills.append((round(time.monotonic() - started, 1), open_orders()))
            await asyncio.to_thread(stack.worker.kill)
            await asyncio.sleep(down)
            stack.worker.start()

    run = await drive_all(stack, plans, killer, WITHIN, lambda: f"kills (s, open orders): {kills}")
    print(f"\n{len(plans)} orders through {KILLS} worker SIGKILLs in {run.elapsed:.1f} s; kills: {kills}")

    # the kills hit orders in flight, and the worker came back after each
    assert len(kills) == KILLS
    assert all(open_now > 0 for _, open_now in kills), kills
    assert stack.worker.starts == KILLS + 1
    assert stack.worker.alive()
    problems = await outcome_problems(stack, plans, run)
    assert not problems, "\n".join(problems[:40])
