"""Worker process: settings -> logging -> database and Temporal client -> activities -> Worker."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from activities.channels import ChannelActivities
from activities.errors import ClassifyFailures
from activities.inbox import InboxActivities
from activities.inventory import InventoryActivities
from activities.mail import MailActivities
from activities.notifications import NotificationActivities
from activities.orders import OrderActivities
from activities.restock import RestockActivities
from app.channel_events import Inbound
from app.orders import OrderGateway
from core.config import Settings, get_settings
from core.logging import configure_logging
from core.metrics import metrics_runtime
from core.temporal import connect
from domain.allocation import parse_rules
from domain.effects import StockSweep
from domain.mail import MailDispatch, WakeMail, mail_dispatcher_id
from services.audit import AuditService
from services.db import create_schema, make_engine
from services.email import SmtpMailer
from services.inbox import InboxService
from services.inventory import InventoryService
from services.mail_queue import MailQueue
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from services.payments import PaymentService
from services.secrets import SecretBox, SecretKeyProblem, check_secret_key
from services.shipments import ShipmentService
from services.shops import ShopService
from services.warehouses import WarehouseService
from workflows.inbox import InboxSweep, InboxSweeperWorkflow, WakeSweeper, inbox_sweeper_id
from workflows.mail import MailDispatcherWorkflow
from workflows.order import OrderWorkflow
from workflows.restock import RestockWorkflow
from workflows.stock_sync import StockSyncWorkflow, stock_sync_id

log = structlog.get_logger(__name__)


def _mailer(settings: Settings) -> SmtpMailer | None:
    if not settings.smtp_host:
        return None
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.email_sender,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        use_tls=settings.smtp_use_tls,
    )


def build_worker(
    client: Client, settings: Settings, engine: Engine | None = None, *, max_cached_workflows: int = 1000
) -> Worker:
    """The worker for the order task queue, ready for `async with` or `run()`. A test that hands a
    running workflow to a second worker on the time-skipping server passes max_cached_workflows=0:
    that server never moves a task off a stopped worker's sticky queue (real servers do after 10 s)."""
    if engine is None:
        engine = make_engine(settings.database_url)
        create_schema(engine)
    rules = parse_rules(settings.allocation_rules)
    inventory = InventoryActivities(InventoryService(engine, WarehouseService(engine, rules)))
    orders = OrderActivities(
        OrderStore(engine), PaymentService(engine), ShipmentService(engine), AuditService(engine)
    )
    notifications = NotificationActivities(
        NotificationOutbox(engine),
        _mailer(settings),
        shop_name=settings.shop_name,
        pay_url_template=settings.pay_url_template,
        queue=MailQueue(engine),
    )
    restock = RestockActivities(client, OrderStore(engine))
    mail = MailActivities(MailQueue(engine), _mailer(settings), give_up_after=settings.mail_give_up_after)
    # The inbox sweeper applies webhook deliveries through the same gateway the API uses. Shops need
    # the secret key (main() refuses to start without it; a test's worker may run without shops).
    sweep: list[Any] = []
    if settings.secret_key is not None:
        shops = ShopService(engine, SecretBox(settings.secret_key, settings.secret_keys_previous))
        inbound = Inbound(OrderGateway(client, OrderStore(engine), settings), InboxService(engine), shops)
        sweep.append(InboxActivities(inbound).sweep_inbox)
        channels = ChannelActivities(
            shops,
            PaymentService(engine),
            InventoryService(engine, WarehouseService(engine, rules)),
            stripe_api_base=settings.stripe_api_base,
        )
        sweep += [
            channels.create_fulfilment,
            channels.cancel_on_shop,
            channels.shop_fixed,
            channels.refund_payment,
            channels.push_stock,
            channels.push_stock_changes,
        ]
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            OrderWorkflow,
            RestockWorkflow,
            MailDispatcherWorkflow,
            InboxSweeperWorkflow,
            StockSyncWorkflow,
        ],
        activities=[
            inventory.lock_stock,
            inventory.reserve_stock,
            inventory.release_stock,
            inventory.ship_stock,
            orders.project_order,
            orders.record_payment,
            orders.record_refund,
            orders.request_shipment,
            orders.cancel_shipment_request,
            orders.close_shipment_request,
            orders.change_shipment_address,
            orders.record_audit,
            notifications.notify_customer,
            restock.dispatch_restock,
            mail.dispatch_mail,
            *sweep,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity"),
        max_concurrent_activities=32,
        graceful_shutdown_timeout=settings.shutdown_grace,
        interceptors=[ClassifyFailures()],
        max_cached_workflows=max_cached_workflows,
    )


async def start_loop(
    client: Client,
    settings: Settings,
    run: Any,
    arg: Any,
    workflow_id: str,
    summary: str,
    wake: Any | None = None,
) -> None:
    """Start one of the task queue's long-running loops unless it runs (one fixed workflow id, the
    running one kept), and wake it when it takes a `wake` signal: this worker may be the first that
    can do its work (SMTP set, Temporal back)."""
    await client.start_workflow(
        run,
        arg,
        id=workflow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=summary,
        start_signal="wake" if wake is not None else None,
        start_signal_args=[wake] if wake is not None else [],
    )


async def start_mail_dispatcher(client: Client, settings: Settings) -> None:
    await start_loop(
        client,
        settings,
        MailDispatcherWorkflow.run,
        MailDispatch(),
        mail_dispatcher_id(settings.task_queue),
        "Sends outbox mail that was never sent; gives up after ORDERS_MAIL_GIVE_UP_AFTER",
        WakeMail(),
    )


async def start_inbox_sweeper(client: Client, settings: Settings) -> None:
    await start_loop(
        client,
        settings,
        InboxSweeperWorkflow.run,
        InboxSweep(),
        inbox_sweeper_id(settings.task_queue),
        "Applies webhook deliveries the order service could not take when they came",
        WakeSweeper(),
    )


async def start_stock_sync(client: Client, settings: Settings) -> None:
    await start_loop(
        client,
        settings,
        StockSyncWorkflow.run,
        StockSweep(),
        stock_sync_id(settings.task_queue),
        "Pushes changed sellable stock (less each shop's buffer) to the shops, coalesced",
    )


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    # A missing or wrong secret key stops the start with SecretKeyProblem saying what to do: the
    # worker's outbound calls read shop secrets, never a plaintext stand-in.
    engine = make_engine(settings.database_url)
    try:
        box = SecretBox(settings.secret_key, settings.secret_keys_previous)
        create_schema(engine)
        check_secret_key(engine, box)
    except SecretKeyProblem as exc:
        log.error("worker_cannot_start", problem=str(exc))
        raise SystemExit(2) from None
    client = await connect(settings, metrics_runtime(settings.worker_metrics_address))
    worker = build_worker(client, settings, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await start_mail_dispatcher(client, settings)
        await start_inbox_sweeper(client, settings)
        await start_stock_sync(client, settings)
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
        await stop.wait()
        log.info("worker_stopping", grace_seconds=settings.shutdown_grace.total_seconds())
    log.info("worker_stopped")


if __name__ == "__main__":
    asyncio.run(main())
    os._exit(0)  # the SDK's threads can crash CPython at interpreter exit (TEMPORAL.md pitfall 6)
