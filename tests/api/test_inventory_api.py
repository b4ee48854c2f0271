"""Inventory over HTTP: warehouses, stock counts, CSV import and export, low stock, sellable units, and
restock sweeps (run by the restock dispatcher workflow) that serve waiting orders in priority order.
Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from app.orders import OrderGateway
from app.restock import Restocker
from core.config import Settings
from domain.models import OrderView
from domain.restock import RestockDispatcherView
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from tests.support.factories import eventually
from tests.support.payloads import body
from workflows.restock import RestockWorkflow

CSV = {"content-type": "text/csv"}


def app_of(api: httpx.AsyncClient) -> FastAPI:
    transport = api._transport
    assert isinstance(transport, httpx.ASGITransport)
    return cast(FastAPI, transport.app)


async def swept(api: httpx.AsyncClient) -> RestockDispatcherView | None:
    """Wait until the restock dispatcher (a Temporal workflow the stock changes signalled before their
    answers) swept every SKU it was handed; None when no stock change ever reached it."""
    restocker: Restocker = app_of(api).state.restocker
    dispatcher = restocker.dispatcher()
    for _ in range(600):
        try:
            view = await dispatcher.query(RestockWorkflow.view)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return None
        if view.idle:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"the restock dispatcher is still busy: {view}")


async def put_stock(api: httpx.AsyncClient, warehouse: str, sku: str, **values: int) -> dict[str, Any]:
    response = await api.put(f"/inventory/{warehouse}/{sku}", json=values)
    assert response.status_code == 200, response.text
    return cast(dict[str, Any], response.json())


async def place(api: httpx.AsyncClient, channel_order_id: str, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/orders", json=body(channel_order_id, **overrides))
    assert response.status_code == 201, response.text
    return cast(dict[str, Any], response.json())


async def pay(api: httpx.AsyncClient, placed: dict[str, Any]) -> dict[str, Any]:
    payment = {
        "payment_id": f"psp_{placed['order_id']}",
        "amount": placed["total"],
        "currency": placed["currency"],
        "method": "card",
    }
    response = await api.post(f"/orders/{placed['order_id']}/payment", json=payment)
    assert response.status_code == 200, response.text
    return cast(dict[str, Any], response.json())


async def first_event(api: httpx.AsyncClient, placed: dict[str, Any], kind: str) -> datetime:
    view = (await api.get(f"/orders/{placed['order_id']}")).json()
    return next(datetime.fromisoformat(e["at"]) for e in view["timeline"] if e["kind"] == kind)


def lamp(quantity: int, price: str) -> list[dict[str, Any]]:
    return [{"sku": "LAMP-1", "quantity": quantity, "unit_price": price}]


# ------------------------------------------------------------------ warehouses
async def test_a_warehouse_is_described_with_its_country_and_shipping_per_region(
    api: httpx.AsyncClient,
) -> None:
    described = {
        "name": "Berlin fulfilment",
        "country": "de",
        "daily_capacity": 400,
        "shipping": {"eu": {"cost": "4.50", "days": 2}, "na": {"cost": "19.00", "days": 7}},
    }
    put = await api.put("/warehouses/WH-BER", json=described)
    assert put.status_code == 200, put.text
    expected = {
        "code": "WH-BER",
        "country": "DE",
        "region": "eu",
        "daily_capacity": 400,
        "shipping": {"eu": {"cost": "4.50", "days": 2}, "na": {"cost": "19.00", "days": 7}},
    }
    assert put.json() == expected
    assert (await api.get("/warehouses/WH-BER")).json() == expected
    assert [w["code"] for w in (await api.get("/warehouses")).json()] == ["WH-BER", "WH-LA", "WH-SZ"]

    moved = await api.put(
        "/warehouses/WH-BER",
        json={**described, "country": "SG", "shipping": {"asia": {"cost": "3", "days": 1}}},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["country"], moved.json()["region"]) == ("SG", "asia")
    assert set((await api.get("/warehouses/WH-BER")).json()["shipping"]) == {"asia"}

    assert (await api.get("/warehouses/WH-NOPE")).status_code == 404


async def test_bad_warehouse_descriptions_are_422_naming_the_field(api: httpx.AsyncClient) -> None:
    good: dict[str, Any] = {"name": "Lyon", "country": "FR", "shipping": {"eu": {"cost": "5", "days": 2}}}
    for change, field in (
        ({"country": "XX"}, "country"),
        ({"country": "France"}, "country"),
        ({"shipping": {}}, "shipping"),
        ({"shipping": {"mars": {"cost": "5", "days": 2}}}, "shipping.mars"),
        ({"shipping": {"eu": {"cost": "-1", "days": 2}}}, "shipping.eu.cost"),
        ({"name": ""}, "name"),
    ):
        response = await api.put("/warehouses/WH-LYS", json={**good, **change})
        assert response.status_code == 422, change
        assert response.json()["errors"][0]["field"].startswith(field), response.json()
    assert (await api.put("/warehouses/bad code!", json=good)).status_code in (404, 422)
    assert [w["code"] for w in (await api.get("/warehouses")).json()] == ["WH-LA", "WH-SZ"]  # the fixture's


# ------------------------------------------------------------------ stock, sellable, low stock
async def test_stock_is_read_and_set_per_warehouse_and_sku(api: httpx.AsyncClient) -> None:
    level = await put_stock(api, "WH-SZ", "LAMP-1", on_hand=5, safety_stock=3)
    assert level == {
        "warehouse": "WH-SZ",
        "sku": "LAMP-1",
        "on_hand": 5,
        "locked": 0,
        "reserved": 0,
        "available": 5,
        "safety_stock": 3,
    }
    await put_stock(api, "WH-LA", "LAMP-1", on_hand=4, safety_stock=1)
    assert (await put_stock(api, "WH-LA", "LAMP-1", on_hand=6))["safety_stock"] == 1  # kept when omitted
    rows = (await api.get("/inventory", params={"sku": "LAMP-1"})).json()
    assert [(r["warehouse"], r["on_hand"], r["safety_stock"]) for r in rows] == [
        ("WH-LA", 6, 1),
        ("WH-SZ", 5, 3),
    ]
    assert len((await api.get("/inventory")).json()) == 4  # with the fixture's two WH-SZ rows
    assert (await api.get("/inventory/WH-SZ/LAMP-1")).json() == level
    assert (await api.get("/inventory/WH-SZ/NOTHING")).status_code == 404

    # sellable: available above safety stock, summed over warehouses
    assert (await api.get("/inventory/sellable", params={"sku": "LAMP-1"})).json() == {"LAMP-1": 2 + 5}
    assert (await api.get("/inventory/sellable")).json() == {"CASE-IP15": 10, "LAMP-1": 7, "USB-C-1M": 10}

    for bad, field in (({"on_hand": -1}, "on_hand"), ({"on_hand": 1, "safety_stock": -2}, "safety_stock")):
        response = await api.put("/inventory/WH-SZ/LAMP-1", json=bad)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
    assert (await api.get("/inventory/WH-SZ/LAMP-1")).json() == level


async def test_a_reservation_under_safety_stock_opens_a_low_stock_event_a_restock_closes(
    api: httpx.AsyncClient,
) -> None:
    await put_stock(api, "WH-SZ", "LAMP-1", on_hand=5, safety_stock=3)
    assert (await api.get("/inventory/low-stock")).json() == []

    placed = await place(api, "SG-L1", lines=lamp(3, "20.00"))
    assert placed["status"] == "pending_payment"
    level = (await api.get("/inventory/WH-SZ/LAMP-1")).json()
    assert (level["reserved"], level["available"]) == (3, 2)
    events = (await api.get("/inventory/low-stock")).json()
    assert [(e["warehouse"], e["sku"], e["available"], e["safety_stock"]) for e in events] == [
        ("WH-SZ", "LAMP-1", 2, 3)
    ]
    assert events[0]["resolved_at"] is None
    assert (await api.get("/inventory/sellable", params={"sku": "LAMP-1"})).json() == {"LAMP-1": 0}

    refused = await api.put("/inventory/WH-SZ/LAMP-1", json={"on_hand": 2})
    assert refused.status_code == 409
    assert "3 reserved" in refused.json()["detail"]

    await put_stock(api, "WH-SZ", "LAMP-1", on_hand=10)
    await swept(api)
    assert (await api.get("/inventory/low-stock")).json() == []
    history = (await api.get("/inventory/low-stock", params={"open": "false"})).json()
    assert len(history) == 1
    assert history[0]["resolved_at"] is not None
    assert (await api.get("/inventory/sellable", params={"sku": "LAMP-1"})).json() == {"LAMP-1": 4}


# ------------------------------------------------------------------ CSV
async def test_stock_csv_exports_edits_and_imports_back(api: httpx.AsyncClient) -> None:
    await place(api, "SG-C1")  # reserves 2 x CASE-IP15 and 1 x USB-C-1M
    exported = await api.get("/inventory/export.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines() == [
        "warehouse,sku,on_hand,locked,reserved,available,safety_stock",
        "WH-SZ,CASE-IP15,10,0,2,8,0",
        "WH-SZ,USB-C-1M,10,0,1,9,0",
    ]

    edited = exported.text.replace("WH-SZ,CASE-IP15,10,0,2,8,0", "WH-SZ,CASE-IP15,25,0,2,8,4")
    edited += "WH-LA,LAMP-1,7,,,,2\n"
    imported = await api.post("/inventory/import", content=edited, headers=CSV)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"rows": 3, "restocked_skus": ["CASE-IP15", "LAMP-1"]}
    await swept(api)
    assert (await api.get("/inventory/export.csv")).text.splitlines() == [
        "warehouse,sku,on_hand,locked,reserved,available,safety_stock",
        "WH-LA,LAMP-1,7,0,0,7,2",
        "WH-SZ,CASE-IP15,25,0,2,23,4",
        "WH-SZ,USB-C-1M,10,0,1,9,0",
    ]
    minimal = await api.post(
        "/inventory/import", content="warehouse,sku,on_hand\nWH-LA,LAMP-1,9\n", headers=CSV
    )
    assert minimal.json() == {"rows": 1, "restocked_skus": ["LAMP-1"]}
    await swept(api)
    assert (await api.get("/inventory/WH-LA/LAMP-1")).json()["safety_stock"] == 2


async def test_a_bad_csv_is_422_naming_the_line_and_nothing_is_applied(api: httpx.AsyncClient) -> None:
    before = (await api.get("/inventory/export.csv")).text
    for text, message in (
        ("warehouse,sku,on_hand\nWH-SZ,CASE-IP15,50\nWH-SZ,USB-C-1M,lots\n", "line 3"),
        ("warehouse,sku,on_hand\nWH-SZ,CASE-IP15,50\n\nWH-SZ,USB-C-1M,-4\n", "line 4"),
        ("warehouse,sku,on_hand\nWH-SZ,CASE-IP15,50\n,USB-C-1M,4\n", "line 3"),
        ("warehouse,sku\nWH-SZ,CASE-IP15\n", "header: missing column(s) on_hand"),
    ):
        response = await api.post("/inventory/import", content=text, headers=CSV)
        assert response.status_code == 422, text
        error = response.json()["errors"][0]
        assert error["field"] == "csv"
        assert error["message"].startswith(message), error
    assert (await api.get("/inventory/export.csv")).text == before


async def test_an_import_refused_for_one_row_applies_none_of_them(api: httpx.AsyncClient) -> None:
    await place(api, "SG-C2")  # reserves 2 x CASE-IP15
    before = (await api.get("/inventory/export.csv")).text
    text = "warehouse,sku,on_hand\nWH-SZ,USB-C-1M,50\nWH-SZ,CASE-IP15,1\n"
    response = await api.post("/inventory/import", content=text, headers=CSV)
    assert response.status_code == 409
    assert "2 reserved" in response.json()["detail"]
    assert (await api.get("/inventory/export.csv")).text == before


# ------------------------------------------------------------------ restock in priority order
async def test_restock_serves_waiting_orders_highest_priority_first(api: httpx.AsyncClient) -> None:
    await put_stock(api, "WH-SZ", "LAMP-1", on_hand=0)
    vip_customer = {"name": "Tan Ah Kow", "email": "tan@example.sg", "tier": "vip"}
    # placed lowest priority first, so the oldest order is not the one served first
    small = await place(api, "SG-P1", lines=lamp(1, "10.00"))
    high = await place(api, "SG-P2", lines=lamp(1, "250.00"))
    vip = await place(api, "SG-P3", lines=lamp(1, "20.00"), customer=vip_customer)
    assert [(o["priority"], o["priority_why"]) for o in (vip, high, small)] == [
        (1, ["VIP customer"]),
        (2, ["order value 250.00 USD"]),
        (4, ["small standard order"]),
    ]
    for placed in (small, high, vip):
        paid = await pay(api, placed)
        assert (paid["status"], paid["exception_reason"]) == ("exception", "out_of_stock")
    store: OrderStore = app_of(api).state.store
    expected = [vip["order_id"], high["order_id"], small["order_id"]]
    # the read model follows each order's workflow a moment later
    assert await eventually(lambda: store.waiting_for_stock(["LAMP-1"]) == expected)

    async def status(order: dict[str, Any]) -> str:
        return str((await api.get(f"/orders/{order['order_id']}")).json()["status"])

    await put_stock(api, "WH-SZ", "LAMP-1", on_hand=2)
    sweep = await swept(api)
    assert sweep is not None
    assert sweep.last is not None  # served by the dispatcher workflow, in priority order
    assert (sweep.last.locked, sweep.last.still_short) == (
        [vip["order_id"], high["order_id"]],
        [small["order_id"]],
    )
    assert [await status(o) for o in (vip, high, small)] == ["stock_locked", "stock_locked", "exception"]
    left = (await api.get(f"/orders/{small['order_id']}")).json()
    assert (left["exception_reason"], left["waiting_for_restock"]) == ("out_of_stock", True)
    level = (await api.get("/inventory/WH-SZ/LAMP-1")).json()
    assert (level["locked"], level["available"]) == (2, 0)
    vip_locked, high_locked = [await first_event(api, o, "stock_locked") for o in (vip, high)]
    assert vip_locked < high_locked  # served one at a time, the VIP first

    await put_stock(api, "WH-SZ", "LAMP-1", on_hand=3)
    await swept(api)
    assert await status(small) == "stock_locked"
    assert (await api.get("/inventory/WH-SZ/LAMP-1")).json()["locked"] == 3
    assert await eventually(lambda: store.waiting_for_stock(["LAMP-1"]) == [])


# ------------------------------------------------------------------ long warehouse codes (PostgreSQL)
LONG_CODES = ("WH-FRANKFURT-MAIN", "WH-ROTTERDAM-PORT")  # 17 characters each; codes may have 32


async def test_the_read_model_takes_a_split_label_of_two_valid_warehouse_codes(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    for code in LONG_CODES:
        described = {"name": code, "country": "DE", "shipping": {"asia": {"cost": "9", "days": 6}}}
        assert (await api.put(f"/warehouses/{code}", json=described)).status_code == 200
    placed = await place(api, "SG-W1")
    store: OrderStore = app_of(api).state.store
    view = OrderView.model_validate(placed).model_copy(update={"warehouse": "+".join(LONG_CODES)})
    await run_in_threadpool(store.project, view)  # what the workflow's projection does once it splits
    stored = store.get(view.order_id)
    assert stored is not None
    assert stored.warehouse == "WH-FRANKFURT-MAIN+WH-ROTTERDAM-PORT"


async def test_a_parcel_shipped_mail_fits_the_outbox_for_any_valid_warehouse_code(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    code = "WH-FRANKFURT-MAIN-CROSSDOCK-0001"  # 32 characters: the longest code PUT /warehouses takes
    described = {"name": "crossdock", "country": "DE", "shipping": {"eu": {"cost": "2", "days": 1}}}
    assert (await api.put(f"/warehouses/{code}", json=described)).status_code == 200
    outbox = NotificationOutbox(engine)
    await run_in_threadpool(
        lambda: outbox.record(
            order_id="ord_long",
            kind=f"order_shipped:{code}",
            recipient="wei@example.sg",
            language="en",
            subject="Your parcel is on its way",
            body_text="shipped",
        )
    )
    assert [n.kind for n in outbox.for_order("ord_long")] == [f"order_shipped:{code}"]


# ------------------------------------------------------------------ placement answers with the hold
async def test_placing_an_order_answers_with_its_payment_deadline_and_why(api: httpx.AsyncClient) -> None:
    placed = await place(api, "SG-H1")
    assert placed["status"] == "pending_payment"
    assert placed["hold_why"] == "the shop's standard payment hold"
    created = datetime.fromisoformat(placed["created_at"])
    assert datetime.fromisoformat(placed["payment_due_at"]) == created + timedelta(days=5)
    assert [e["kind"] for e in placed["timeline"]] == ["placed", "stock_reserved", "payment_due"]
    assert (await api.get("/inventory/WH-SZ/CASE-IP15")).json()["reserved"] == 2
    again = await api.post("/orders", json=body("SG-H1"))
    assert again.status_code == 200
    assert again.json()["payment_due_at"] == placed["payment_due_at"]


# ------------------------------------------------------------------ restock hand-off, Temporal away
async def test_a_stock_change_stands_when_temporal_cannot_take_the_restock(api: httpx.AsyncClient) -> None:
    app = app_of(api)
    unreachable = await Client.connect(
        "127.0.0.1:1",  # nothing listens there
        data_converter=pydantic_data_converter,
        lazy=True,
        retry_config=RetryConfig(max_retries=1, max_elapsed_time_millis=1000),
    )
    settings: Settings = app.state.settings
    app.state.restocker = Restocker(OrderGateway(unreachable, app.state.store, settings))

    level = await put_stock(api, "WH-SZ", "LAMP-1", on_hand=4)  # answered: the count is what was asked
    assert level["on_hand"] == 4
    assert (await api.get("/inventory/WH-SZ/LAMP-1")).json()["available"] == 4
    imported = await api.post(
        "/inventory/import", content="warehouse,sku,on_hand\nWH-SZ,LAMP-1,6\n", headers=CSV
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"rows": 1, "restocked_skus": ["LAMP-1"]}
    assert not await app.state.restocker.sweep(["LAMP-1"])  # not handed over: each order re-checks itself
