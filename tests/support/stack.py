"""The whole system for a reliability test: dev server, worker subprocess, SMTP server, stocked database.

The worker mails customers through a real SMTP server on loopback (tests/support/smtp.py's Mailroom,
on a thread of the test process, so it keeps receiving while the worker is killed and restarted);
the checks (tests/support/checks.py) compare what that server received with what the orders should
have mailed and with the outbox table.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client

from services.db import create_schema, make_engine
from services.inventory import InventoryService
from tests.support.databases import throwaway_database
from tests.support.plans import ON_HAND, PRICES, WAREHOUSE
from tests.support.processes import DevServer, WorkerProcess
from tests.support.smtp import Mailroom, serving


@dataclass
class Stack:
    server: DevServer
    worker: WorkerProcess
    client: Client
    engine: Engine
    task_queue: str
    mail: Mailroom


@asynccontextmanager
async def running_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Dev server + worker subprocess + SMTP server + a database with stock; every process group
    ended after."""
    server = DevServer(tmp_path)
    worker: WorkerProcess | None = None
    mail = Mailroom()
    with throwaway_database(tmp_path) as database_url, serving(mail) as smtp_port:
        engine = make_engine(database_url)
        try:
            create_schema(engine)
            inventory = InventoryService(engine)
            for sku in PRICES:
                inventory.set_on_hand(WAREHOUSE, sku, ON_HAND)
            server.start()
            client = await server.connect()
            task_queue = f"orders-rel-{uuid.uuid4().hex[:8]}"
            worker = WorkerProcess(
                tmp_path,
                {
                    "ORDERS_TEMPORAL_ADDRESS": server.address,
                    "ORDERS_DATABASE_URL": database_url,
                    "ORDERS_TASK_QUEUE": task_queue,
                    "ORDERS_PAYMENT_HOLD_RULE": "fixed",
                    "ORDERS_SMTP_HOST": "127.0.0.1",
                    "ORDERS_SMTP_PORT": str(smtp_port),
                },
            )
            worker.start()
            await worker.wait_polling(client, task_queue)
            yield Stack(server, worker, client, engine, task_queue, mail)
        finally:
            if worker is not None:
                worker.kill()
            server.stop(grace=10)
            engine.dispose()
