"""Who may call what: every route of the app against every kind of caller, from one table.

A route added without a line in RULES fails here, so nobody ships an endpoint whose access was never
decided. The table is README's role list ("Roles: ...") written as data."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from domain.access import Role
from services.auth import ApiKeyService
from tests.support.temporal import make_settings

PUBLIC, READ, WRITE, OPERATE = "public", "read", "write", "operate"

# Who passes each rule; None is a request without a key.
ALLOWED: dict[str, set[Role | None]] = {
    PUBLIC: {None, Role.VIEWER, Role.INTEGRATION, Role.OPERATOR},
    READ: {Role.VIEWER, Role.INTEGRATION, Role.OPERATOR},
    WRITE: {Role.INTEGRATION, Role.OPERATOR},
    OPERATE: {Role.OPERATOR},
}

RULES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static/docs"): PUBLIC,
    ("GET", "/orders"): READ,
    ("POST", "/orders"): WRITE,
    ("GET", "/orders/stuck"): READ,
    ("GET", "/orders/{order_id}"): READ,
    ("GET", "/orders/{order_id}/audit"): READ,
    ("POST", "/orders/{order_id}/payment"): WRITE,
    ("POST", "/orders/{order_id}/shipment"): WRITE,
    ("POST", "/orders/{order_id}/tracking"): WRITE,
    ("POST", "/orders/{order_id}/confirm-receipt"): WRITE,
    ("POST", "/orders/{order_id}/cancel"): WRITE,
    ("POST", "/orders/{order_id}/actions/{action}"): OPERATE,
    ("POST", "/orders/actions/{action}"): OPERATE,
    ("GET", "/inventory"): READ,
    ("GET", "/inventory/sellable"): READ,
    ("GET", "/inventory/low-stock"): READ,
    ("GET", "/inventory/export.csv"): READ,
    ("POST", "/inventory/import"): WRITE,
    ("GET", "/inventory/{warehouse}/{sku}"): READ,
    ("PUT", "/inventory/{warehouse}/{sku}"): WRITE,
    ("GET", "/warehouses"): READ,
    ("GET", "/warehouses/{code}"): READ,
    ("PUT", "/warehouses/{code}"): OPERATE,
    ("GET", "/shops"): READ,
    ("GET", "/shops/{shop_id}"): READ,
    ("PUT", "/shops/{shop_id}"): OPERATE,
    # Stores and Stripe sign their deliveries: the signature, not an API key, is the authentication.
    ("POST", "/webhooks/shopify/{shop_id}"): PUBLIC,
    ("POST", "/webhooks/woocommerce/{shop_id}"): PUBLIC,
    ("POST", "/webhooks/stripe/{account_id}"): PUBLIC,
    ("GET", "/webhooks/deliveries"): OPERATE,
    ("POST", "/webhooks/deliveries/{inbox_id}/replay"): OPERATE,
}

# Values for path parameters: names of things that do not exist, so an allowed call ends in 404 or 422
# (its body is `{}`) and changes nothing.
PATH_VALUES = {"order_id": "ord_none", "action": "hold", "warehouse": "WH-NONE", "sku": "SKU-NONE"}
PATH_VALUES["code"] = "WH-NONE"
PATH_VALUES["shop_id"] = "shop-none"
PATH_VALUES["account_id"] = "acct_none"
PATH_VALUES["inbox_id"] = "999999"


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, included routers and mounts too."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        assert route.path is not None
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {sku:path} -> {sku}
        for method in route.methods or {"GET"}:
            if method != "HEAD":
                found.add((method, path))
    return found


def concrete(method: str, path: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A request to the route: its URL, extra headers and body."""
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    if path == "/static/docs":
        return url + "/swagger-ui.css", {}, {}
    if path == "/inventory/import":
        return url, {"content-type": "text/csv"}, {"content": b"warehouse,sku,on_hand\n"}
    return url, {}, ({"json": {}} if method in ("POST", "PUT") else {})


@pytest.fixture
async def served(
    dev_env: WorkflowEnvironment, db_url: str, engine: Engine
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = make_settings(
        temporal_address=dev_env.client.service_client.config.target_host, database_url=db_url
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


def test_every_route_has_a_declared_rule() -> None:
    routes = app_routes(create_app(make_settings()))
    assert routes - RULES.keys() == set(), "declare who may call these routes in RULES"
    assert RULES.keys() - routes == set(), "these rules name routes the app no longer has"


async def test_each_role_may_call_exactly_the_routes_its_rule_allows(
    served: tuple[FastAPI, httpx.AsyncClient], engine: Engine
) -> None:
    app, client = served
    keys = ApiKeyService(engine)
    headers: dict[Role | None, dict[str, str]] = {None: {}}
    for role in Role:
        key, _ = keys.create(f"{role.value}@roles", role)
        headers[role] = {"authorization": f"Bearer {key}"}

    wrong: list[str] = []
    for method, path in sorted(app_routes(app)):
        url, extra, body = concrete(method, path)
        allowed = ALLOWED[RULES[(method, path)]]
        for caller, auth in headers.items():
            response = await client.request(method, url, headers={**auth, **extra}, **body)
            refused = response.status_code in (401, 403)
            expected = None if caller in allowed else (401 if caller is None else 403)
            if (expected is None and refused) or (expected is not None and response.status_code != expected):
                wrong.append(f"{method} {path} as {caller or 'no key'}: {response.status_code}")
            assert response.status_code < 500, f"{method} {path} as {caller}: {response.text}"
    assert wrong == []
