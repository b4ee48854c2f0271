"""The HTTP API: create_app() wires settings, database and Temporal client into the routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from temporalio.runtime import Runtime

from api.errors import ERROR_RESPONSES, install_error_handlers
from api.guard import DOCS_ASSETS, JSON_BODY_LIMIT, ApiKeyGuard
from api.routes import actions, inventory, orders
from api.routes import shops as shops_routes
from api.routes import warehouses as warehouses_routes
from api.routes import webhooks as webhooks_routes
from app.channel_events import Inbound
from app.inventory import StockCounts
from app.orders import OrderGateway
from app.restock import Restocker
from app.shops import Shops
from core.config import Settings, get_settings
from core.logging import configure_logging
from core.metrics import ORDERS_BY_STATUS, READ_MODEL_LAGGING, metrics_runtime
from core.temporal import connect
from domain.allocation import parse_rules
from domain.models import OrderStatus
from services.audit import AuditService
from services.auth import ApiKeyService
from services.db import create_schema, make_engine
from services.inbox import InboxService
from services.inventory import InventoryService
from services.orders import OrderStore
from services.secrets import SecretBox, check_secret_key
from services.shops import ShopService
from services.warehouses import WarehouseService


async def _publish_order_counts(runtime: Runtime, store: OrderStore, every: float = 15) -> None:
    """Orders per status from the read model, as a Prometheus gauge, refreshed every `every` s."""
    gauge = runtime.metric_meter.create_gauge(ORDERS_BY_STATUS, "Orders per status (read model)", "1")
    lagging = runtime.metric_meter.create_gauge(
        READ_MODEL_LAGGING, "Orders whose read-model row is behind their workflow", "1"
    )
    while True:
        try:
            counts = await run_in_threadpool(store.count_by_status)
            behind = await run_in_threadpool(store.lagging)
        except SQLAlchemyError:  # the database is away: keep the last figures, look again later
            await asyncio.sleep(every)
            continue
        for status in OrderStatus:
            gauge.set(counts.get(status.value, 0), {"status": status.value})
        lagging.set(len(behind))
        await asyncio.sleep(every)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        # A missing or wrong secret key stops the start (SecretKeyProblem says what to do), before the
        # API answers anything: shop secrets are never stored or read in plaintext.
        box = SecretBox(settings.secret_key, settings.secret_keys_previous)
        engine = make_engine(settings.database_url)
        create_schema(engine)
        check_secret_key(engine, box)
        runtime = metrics_runtime(settings.api_metrics_address)
        client = await connect(settings, runtime)
        store = OrderStore(engine)
        app.state.settings = settings
        app.state.store = store
        app.state.audit = AuditService(engine)
        bootstrap = settings.bootstrap_api_key.get_secret_value() if settings.bootstrap_api_key else None
        app.state.keys = ApiKeyService(engine, bootstrap)
        warehouses = WarehouseService(engine, parse_rules(settings.allocation_rules))
        app.state.warehouses = warehouses
        app.state.inventory = InventoryService(engine, warehouses)
        gateway = OrderGateway(client, store, settings)
        app.state.gateway = gateway
        app.state.restocker = Restocker(gateway, store)
        app.state.stock_counts = StockCounts(app.state.inventory, warehouses, app.state.restocker)
        shop_service = ShopService(engine, box, settings.webhook_secret_grace)
        app.state.shops = Shops(shop_service)
        app.state.inbound = Inbound(
            gateway, InboxService(engine), shop_service, runtime, settings.webhook_answer_within
        )
        gauges = asyncio.create_task(_publish_order_counts(runtime, store)) if runtime else None
        yield
        if gauges:
            gauges.cancel()
        await app.state.restocker.drain()
        await app.state.inbound.drain()
        engine.dispose()

    # /docs and /redoc with Swagger UI and ReDoc served from the fastapi-offline package, not a CDN:
    # they work where the API runs without the internet (a warehouse LAN, a locked-down VPC).
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="orderflow",
        version="0.1.0",
        summary="Every order a durable Temporal workflow: payment, stock, shipment, tracking.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    app.add_middleware(ApiKeyGuard)
    # Every body has a limit, checked as it streams in; a route may set its own (the CSV import does).
    routers = (
        actions.router,
        orders.router,
        inventory.router,
        warehouses_routes.router,
        shops_routes.router,
        webhooks_routes.router,
    )
    for router in routers:
        app.include_router(router, max_body_size=JSON_BODY_LIMIT)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process is up."""
        return {"status": "ok"}

    return app


app = create_app()
