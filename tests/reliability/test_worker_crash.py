"""The worker is SIGKILLed 5 times while 100 orders move through their lifecycle, and restarted each time.

Our own `temporal server start-dev` (SQLite file in tmp_path), the real worker (`python worker.py`,
ORDERS_* settings) as a subprocess, a throwaway PostgreSQL database, and a real SMTP server in the
test process that the worker mails customers through. A seeded killer SIGKILLs the worker's
process group at 4 moments drawn from SEED while the orders are driven (tests/support/ says how,
and why the unpaid ones carry compressed timers), and once more when a number of mails drawn from
SEED has arrived (the worker spends much of the first 30 s restarting, so most mail leaves later).
Afterwards every order must be closed in its expected final state, the stock ledger must hold each
move once with locked and reserved back at 0 and on_hand down by exactly what shipped, and the SMTP
server must have received every mail the orders call for exactly once (by recipient and
Message-ID): the three reminders and the cancellation for each unpaid order, a "shipped" for each
shipped one, each marked sent in the outbox after it arrived.

Where a kill may land in the mail: SMTP has no idempotency key, so a crash after the server accepted
a message (its 250 to DATA) and before the worker marked the outbox row sent makes the retry send it
again. No mail system closes that window (one round trip and one commit wide); the worker keeps it
that small, and the stable Message-ID makes such a copy recognisable. So that no run fails by
landing there, the killer first pauses the SMTP server (tests/support/smtp.py, Mailroom.pause): it holds
the answer to QUIT, which the worker sends only after marking the row, until a mail is held there,
then holds new mails before DATA until one is held there too (each for up to CATCH_A_MAIL; for the
last kill, until they are), and kills once no mail is between the two. Every kill thus lands on
mails not yet begun, whose retry must send them, and on mails accepted and marked whose activity
has not finished, whose retry must not send them again: the checks fail if the worker sends a mail
twice or loses one.
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
TIMED_KILLS = 4
FIRST_KILL = (2.0, 5.0)  # seconds after driving starts; orders are placed over the first 8 s
KILL_GAP = (4.0, 7.0)  # the restarted worker works a while before the next kill
CATCH_A_MAIL = 1.0  # before a timed kill, wait this long at most for a mail held at QUIT, and at RCPT
MAIL_KILL_AFTER = (10, 40)  # the last kill once this many mails (of about 150) have arrived
MAIL_FLOWS_WITHIN = 20.0  # by then, a mail reaches QUIT and another RCPT well within this
# A killed worker's activities are retried after their 30 s start-to-close timeout; the last
# kill comes about 30 s in, when mail flows, and everything is done well before this.
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
    while len(moments) < TIMED_KILLS:
        moments.append(moments[-1] + rng.uniform(*KILL_GAP))
    mails_before_last = rng.randint(*MAIL_KILL_AFTER)
    downtimes = [rng.uniform(0.2, 2.0) for _ in range(TIMED_KILLS + 1)]
    # (seconds since start, orders open, mails cut off before DATA, mails accepted and not finished)
    kills: list[tuple[float, int, int, int]] = []

    async def killer(open_orders: Callable[[], int]) -> None:
        started = time.monotonic()

        async def kill(catch_within: float, down: float) -> None:
            paused = await stack.mail.pause(catch_within=catch_within)
            since = round(time.monotonic() - started, 1)
            kills.append((since, open_orders(), paused.before_data, paused.after_acceptance))
            await asyncio.to_thread(stack.worker.kill)
            stack.mail.release()
            await asyncio.sleep(down)
            stack.worker.start()

        for moment, down in zip(moments, downtimes[:TIMED_KILLS], strict=True):
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            await kill(CATCH_A_MAIL, down)
        await stack.mail.wait_for(mails_before_last)
        await kill(MAIL_FLOWS_WITHIN, downtimes[-1])

    def describe() -> str:
        return f"kills (s, open orders, mails cut off before DATA, mails accepted): {kills}"

    run = await drive_all(stack, plans, killer, WITHIN, describe)
    print(f"\n{len(plans)} orders through {len(kills)} worker SIGKILLs in {run.elapsed:.1f} s; {describe()}")

    # the kills hit orders in flight, and the worker came back after each
    assert len(kills) == TIMED_KILLS + 1
    assert all(open_now > 0 for _, open_now, _, _ in kills), kills
    # the last caught a mail before DATA and one accepted and marked with its activity unfinished:
    # the retries of both ran
    assert kills[-1][2] > 0, kills
    assert kills[-1][3] > 0, kills
    assert stack.worker.starts == TIMED_KILLS + 2
    assert stack.worker.alive()
    problems = await outcome_problems(stack, plans, run)
    assert not problems, "\n".join(problems[:40])
