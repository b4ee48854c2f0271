"""Running orderflow in production: Prometheus metrics from the worker and the API, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from domain.models import CancelOrder, OrderStatus
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from tests.services.test_orders_store import make_view
from tests.support.factories import eventually, order, payment_for, start_order, terminate_started
from tests.support.processes import free_port
from tests.support.temporal import TEST_SECRET_KEY
from workflows.order import OrderWorkflow

ROOT = Path(__file__).parents[1]


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        return str(response.read().decode())


def value(metrics: str, name: str, **labels: str) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@contextmanager
def worker_process(settings: Settings, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    values = {
        "ORDERS_TEMPORAL_ADDRESS": settings.temporal_address,
        "ORDERS_TASK_QUEUE": settings.task_queue,
        "ORDERS_DATABASE_URL": settings.database_url,
        "ORDERS_PAYMENT_HOLD_RULE": "fixed",
        "ORDERS_SECRET_KEY": TEST_SECRET_KEY,
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env={**os.environ, **values},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


async def test_worker_exports_sdk_and_orderflow_metrics(
    dev_env: WorkflowEnvironment, sqlite_engine: Engine, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"orders-metrics-{free_port()}",
        database_url=str(sqlite_engine.url),
        payment_hold_rule="fixed",
    )
    InventoryService(sqlite_engine).set_on_hand("WH-SZ", "CASE-IP15", 10)
    InventoryService(sqlite_engine).set_on_hand("WH-SZ", "USB-C-1M", 10)
    with worker_process(settings, {"ORDERS_WORKER_METRICS_ADDRESS": address}, tmp_path / "worker.log"):
        placed = order()
        handle = await start_order(dev_env.client, settings, placed)
        await handle.execute_update(OrderWorkflow.pay, payment_for(placed))
        metrics = await eventually(lambda: _scrape_when(address, "orderflow_stock_locks"))
        await terminate_started()
    assert metrics is not None
    assert value(metrics, "orderflow_orders_placed", channel="shopify") == 1
    assert value(metrics, "orderflow_stock_locks", result="locked") == 1
    assert "temporal_workflow_task_execution_latency" in metrics  # the SDK's own metrics, same endpoint


def _scrape_when(address: str, name: str) -> str | None:
    try:
        metrics = scrape(address)
    except OSError:
        return None
    return metrics if name in metrics else None


async def test_api_exports_orders_by_status(dev_env: WorkflowEnvironment, sqlite_engine: Engine) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"orders-api-metrics-{free_port()}",
        database_url=str(sqlite_engine.url),
        api_metrics_address=address,
        secret_key=TEST_SECRET_KEY,
    )
    store = OrderStore(sqlite_engine)
    store.project(make_view("ord_m1"))
    store.project(make_view("ord_m2"))
    store.project(make_view("ord_m3", status=OrderStatus.EXCEPTION))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        metrics = await eventually(lambda: _scrape_when(address, "orderflow_orders"))
    assert metrics is not None
    assert value(metrics, "orderflow_orders", status="pending_payment") == 2
    assert value(metrics, "orderflow_orders", status="exception") == 1
    assert 'orderflow_orders{service_name="temporal-core-sdk",status="completed"} 0' in metrics


class SlowInbox:
    """An SMTP server that takes its time accepting a message, and says when one is on its way."""

    def __init__(self) -> None:
        self.receiving = threading.Event()
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        await asyncio.sleep(3)
        self.received.append(envelope)
        return "250 Message accepted for delivery"


async def test_sigterm_lets_the_worker_finish_an_email_in_flight_then_exit_cleanly(
    dev_env: WorkflowEnvironment, sqlite_engine: Engine, tmp_path: Path
) -> None:
    inbox = SlowInbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"orders-shutdown-{smtp_port}",
        database_url=str(sqlite_engine.url),
        payment_hold_rule="fixed",
    )
    env = {
        "ORDERS_SMTP_HOST": "127.0.0.1",
        "ORDERS_SMTP_PORT": str(smtp_port),
        "ORDERS_SHUTDOWN_GRACE": "20s",
    }
    log = tmp_path / "worker.log"
    try:
        with worker_process(settings, env, log) as worker:
            handle = await start_order(dev_env.client, settings, order())
            cancelled = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer asked"))
            assert await asyncio.to_thread(inbox.receiving.wait, 30), "the cancellation email never started"
            worker.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = await asyncio.to_thread(worker.wait, 30)
            stopped_after = time.monotonic() - started
    finally:
        controller.stop()
    assert code == 0, log.read_text()[-2000:]
    assert len(inbox.received) == 1, "the email in flight was delivered, not cut off"
    [entry] = NotificationOutbox(sqlite_engine).for_order(cancelled.order_id)
    assert entry.sent_at is not None, "and recorded as sent before the worker left"
    assert stopped_after < 20
    assert "worker_stopped" in log.read_text()
    await terminate_started()
