"""API test fixtures: the app wired to a real Temporal dev server, an in-process worker, a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from domain.access import Role
from services.auth import ApiKeyService
from tests.support.temporal import make_settings, running_worker
from tests.support.warehouses import EVERYWHERE


@pytest.fixture
def key_for(engine: Engine) -> Callable[[Role], str]:
    """Make a real API key of a role; returns the Authorization header value."""

    def make(role: Role) -> str:
        key, _ = ApiKeyService(engine).create(f"{role.value}@demo", role)
        return f"Bearer {key}"

    return make


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, db_url: str, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        database_url=db_url,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), running_worker(dev_env.client, settings, engine):
        transport = httpx.ASGITransport(app=app)
        key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            await _stock(client, settings)
            yield client


async def _stock(client: httpx.AsyncClient, _: Settings) -> None:
    for code in ("WH-SZ", "WH-LA"):
        registered = await client.put(f"/warehouses/{code}", json=EVERYWHERE)
        assert registered.status_code == 200, registered.text
    for sku, on_hand in (("CASE-IP15", 10), ("USB-C-1M", 10)):
        response = await client.put(f"/inventory/WH-SZ/{sku}", json={"on_hand": on_hand})
        assert response.status_code == 200, response.text
