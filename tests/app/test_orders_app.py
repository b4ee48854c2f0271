"""The use cases without HTTP: what a CLI, a webhook or a schedule gets when an order cannot be acted on."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from app.errors import InvalidField, OrderNotFound
from app.orders import OrderGateway
from domain.models import CancelOrder, TrackingUpdate
from services.orders import OrderStore
from tests.support.temporal import make_settings

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture
def gateway(dev_env: WorkflowEnvironment, engine: Engine) -> OrderGateway:
    return OrderGateway(dev_env.client, OrderStore(engine), make_settings())


async def test_an_unknown_order_is_order_not_found_for_reads_and_commands(gateway: OrderGateway) -> None:
    with pytest.raises(OrderNotFound) as found:
        await gateway.get("ord_none")
    assert found.value.order_id == "ord_none"
    with pytest.raises(OrderNotFound):
        await gateway.cancel("ord_none", CancelOrder(reason="buyer asked"))
    assert await gateway.find("ord_none") is None


async def test_a_tracking_event_far_ahead_is_refused_naming_the_field(gateway: OrderGateway) -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    ahead = TrackingUpdate(status="in_transit", at=now + timedelta(days=1, minutes=1))
    with pytest.raises(InvalidField) as refused:
        await gateway.track("ord_none", ahead, now=now)
    assert refused.value.field == "at"
    assert "more than a day in the future" in refused.value.message
    within = TrackingUpdate(status="in_transit", at=now + timedelta(hours=20))
    with pytest.raises(OrderNotFound):  # the time is fine: it goes on to the (unknown) order
        await gateway.track("ord_none", within, now=now)


def test_the_use_cases_know_nothing_of_http() -> None:
    """app/ serves the CLI and webhooks too: no FastAPI or Starlette, no HTTP status codes, no api/."""
    for module in APP.glob("*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        roots = {name.split(".")[0] for name in imported}
        assert not roots & {"fastapi", "api"}, module.name
        assert {n for n in imported if n.startswith("starlette")} <= {"starlette.concurrency"}, module.name
