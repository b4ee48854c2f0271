"""Stock over HTTP at its edges: what a CSV import and PUT /inventory accept (the same rules), which
warehouse stock may be put in, SKUs written two ways, and an export a spreadsheet opens safely.
Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from services.inventory import InventoryService
from tests.api.test_inventory_api import CSV, app_of

HEADER = "warehouse,sku,on_hand,safety_stock\n"


@pytest.mark.parametrize(
    ("row", "where"),
    [
        (f"{'W' * 33},LAMP-1,1,", "line 3, column warehouse"),
        (f"WH-SZ,{'S' * 65},1,", "line 3, column sku"),
        (f"WH-SZ,LAMP-1,{2**31},", "line 3, column on_hand"),
        (f"WH-SZ,LAMP-1,1,{2**31}", "line 3, column safety_stock"),
        (f"WH-SZ,LAMP-1,{10**20},", "line 3, column on_hand"),
        ("WH-SZ,LAMP-1,١٢,", "line 3, column on_hand"),  # Arabic-Indic digits
        ("WH-SZ,LAMP-1,1_000,", "line 3, column on_hand"),
        ("WH-SZ,=HYPERLINK(1),1,", "line 3, column sku"),
        ("WH-SZ,@SUM(1+1),1,", "line 3, column sku"),
        ("WH-NOWHERE,LAMP-1,1,", "line 3, column warehouse"),  # never registered
        ("WH-SZ,case-ip15,1,", "line 3, column sku"),  # stocked as CASE-IP15
    ],
)
async def test_a_csv_row_the_stock_cannot_take_is_422_naming_its_line_and_column(
    api: httpx.AsyncClient, row: str, where: str
) -> None:
    before = (await api.get("/inventory/export.csv")).text
    text = f"{HEADER}WH-SZ,USB-C-1M,50,\n{row}\n"

    response = await api.post("/inventory/import", content=text, headers=CSV)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "csv"
    assert error["message"].startswith(where), error
    assert (await api.get("/inventory/export.csv")).text == before  # nothing applied, not even line 2
    assert (await api.get("/inventory/sellable")).status_code == 200


@pytest.mark.parametrize("sku", ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)"])
async def test_put_inventory_refuses_a_sku_a_spreadsheet_would_run(api: httpx.AsyncClient, sku: str) -> None:
    response = await api.put(f"/inventory/WH-SZ/{sku}", json={"on_hand": 1})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "sku"


async def test_the_export_quotes_a_formula_written_before_skus_were_checked(api: httpx.AsyncClient) -> None:
    inventory: InventoryService = app_of(api).state.inventory
    for old in ("=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example")', "-1+2", "@SUM(1)"):
        await run_in_threadpool(inventory.set_on_hand, "WH-SZ", old, 1)

    exported = (await api.get("/inventory/export.csv")).text.splitlines()

    assert exported[1:5] == [
        "WH-SZ,'-1+2,1,0,0,1,0",
        'WH-SZ,"\'=HYPERLINK(""http://evil.example"")",1,0,0,1,0',
        "WH-SZ,'=cmd|' /C calc'!A0,1,0,0,1,0",
        "WH-SZ,'@SUM(1),1,0,0,1,0",
    ]


async def test_stock_for_a_warehouse_nobody_registered_is_404_naming_it(api: httpx.AsyncClient) -> None:
    response = await api.put("/inventory/WH-GHOST/LAMP-1", json={"on_hand": 5})

    assert response.status_code == 404
    assert "WH-GHOST" in response.json()["detail"]
    assert "PUT /warehouses/WH-GHOST" in response.json()["detail"]
    assert (await api.get("/inventory", params={"sku": "LAMP-1"})).json() == []


async def test_a_sku_is_one_item_whatever_its_case(api: httpx.AsyncClient) -> None:
    refused = await api.put("/inventory/WH-LA/case-ip15", json={"on_hand": 5})
    assert refused.status_code == 409
    assert "stocked as CASE-IP15" in refused.json()["detail"]

    two_ways = f"{HEADER}WH-LA,Lamp-1,1,\nWH-SZ,LAMP-1,2,\n"
    response = await api.post("/inventory/import", content=two_ways, headers=CSV)
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"].startswith("line 3, column sku: 'LAMP-1' and 'Lamp-1'")

    assert (await api.put("/inventory/WH-LA/CASE-IP15", json={"on_hand": 5})).status_code == 200


async def test_a_sku_with_a_slash_and_identifiers_typed_in_fullwidth_or_with_invisible_characters(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.put("/inventory/WH-SZ/TEE/RED/M", json={"on_hand": 3})).status_code == 200
    assert (await api.get("/inventory/WH-SZ/TEE/RED/M")).json()["on_hand"] == 3

    # U+FF23 is a fullwidth C, U+200B a zero-width space: still the CASE-IP15 the fixture stocked.
    recount = await api.put("/inventory/WH-SZ/\uff23ASE-IP15\u200b", json={"on_hand": 12})
    assert recount.status_code == 200, recount.text
    assert recount.json()["sku"] == "CASE-IP15"
    assert (await api.get("/inventory/WH-SZ/CASE-IP15")).json()["on_hand"] == 12


async def test_put_inventory_takes_the_counts_a_csv_cell_would(api: httpx.AsyncClient) -> None:
    for bad in (
        {"on_hand": 2**31},
        {"on_hand": "1_000"},
        {"on_hand": "١٢"},
        {"on_hand": 5.0},
        {"on_hand": True},
    ):
        response = await api.put("/inventory/WH-SZ/LAMP-1", json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"] == "on_hand"
