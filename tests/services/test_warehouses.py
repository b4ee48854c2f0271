"""Multi-warehouse inventory through the services: which warehouse ships, splits, shortages, capacity,
reservations, low-stock events, sellable stock and the stock CSV."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.allocation import AllocationRule, ShippingOption, StockShortage, WarehouseInfo
from domain.regions import Region, region_of
from services.inventory import InventoryService
from services.tables import StockAllocation
from services.warehouses import BadCsv, WarehouseService, parse_stock_csv
from tests.services.test_inventory import (
    assert_stock_consistent,
    level,
    line,
    moves,
    part,
)

MUG, TEE = "MUG-BLUE", "TEE-L"

# China ships everywhere, cheap and slow; Los Angeles and Frankfurt only within their region, fast.
SZ_LANES = {
    Region.NA: ("4.00", 12),
    Region.EU: ("4.50", 14),
    Region.ASIA: ("2.00", 4),
    Region.OCEANIA: ("5.00", 12),
}


def warehouse(
    code: str, country: str, ships: dict[Region, tuple[str, int]], capacity: int | None = None
) -> WarehouseInfo:
    return WarehouseInfo(
        code=code,
        country=country,
        region=region_of(country),
        daily_capacity=capacity,
        shipping={
            region: ShippingOption(cost=Decimal(cost), days=days) for region, (cost, days) in ships.items()
        },
    )


SZ = warehouse("WH-SZ", "CN", SZ_LANES)
LA = warehouse("WH-LA", "US", {Region.NA: ("6.00", 3)})
FRA = warehouse("WH-FRA", "DE", {Region.EU: ("5.00", 3)})


@pytest.fixture(autouse=True)
def _stock_stays_consistent(engine: Engine) -> Iterator[None]:
    yield
    assert_stock_consistent(engine)


@pytest.fixture
def warehouses(engine: Engine) -> WarehouseService:
    service = WarehouseService(engine)
    for info, name in [(SZ, "Shenzhen"), (LA, "Los Angeles"), (FRA, "Frankfurt")]:
        service.upsert(info, name)
    return service


@pytest.fixture
def inventory(engine: Engine, warehouses: WarehouseService) -> InventoryService:
    return InventoryService(engine, warehouses)


def claims(engine: Engine) -> list[StockAllocation]:
    with Session(engine) as session:
        return list(session.exec(select(StockAllocation)).all())


# -------------------------------------------------------------- registry
def test_warehouses_are_stored_as_described(engine: Engine, warehouses: WarehouseService) -> None:
    assert warehouses.get("WH-SZ") == SZ
    assert warehouses.get("WH-NOWHERE") is None
    assert [w.code for w in warehouses.all()] == ["WH-FRA", "WH-LA", "WH-SZ"]

    narrower = warehouse("WH-SZ", "CN", {Region.ASIA: ("2.50", 5)}, capacity=40)
    warehouses.upsert(narrower)

    assert warehouses.get("WH-SZ") == narrower
    # Stock in a warehouse nobody registered is still allocatable: it ships anywhere, region unknown.
    [unknown] = [w for w in warehouses.infos(known=["WH-TMP"]) if w.code == "WH-TMP"]
    assert unknown.region is None
    assert set(unknown.shipping) == set(Region)


# -------------------------------------------------------------- which warehouse ships
@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("US", "WH-LA"),  # same region beats SZ's cheaper lane
        ("CA", "WH-LA"),
        ("DE", "WH-FRA"),
        ("FR", "WH-FRA"),
        ("JP", "WH-SZ"),
        ("AU", "WH-SZ"),  # no warehouse in Oceania: the only one shipping there
    ],
)
def test_each_order_ships_from_the_warehouse_its_region_and_cost_pick(
    engine: Engine, inventory: InventoryService, destination: str, expected: str
) -> None:
    for code in ("WH-SZ", "WH-LA", "WH-FRA"):
        inventory.set_on_hand(code, MUG, 10)

    lock = inventory.lock_order("ord_1", [line(MUG, 2)], destination)

    assert lock.locked
    assert lock.warehouse == expected
    assert lock.parts == [part(expected, (0, MUG, 2))]
    assert [(m.warehouse, m.quantity) for m in moves(engine, "ord_1", "lock")] == [(expected, 2)]
    assert level(inventory, MUG, expected).locked == 2


def test_a_destination_no_warehouse_ships_to_gets_nothing_but_cancel(
    engine: Engine, warehouses: WarehouseService, inventory: InventoryService
) -> None:
    for code in ("WH-SZ", "WH-LA", "WH-FRA"):
        inventory.set_on_hand(code, MUG, 10)
    warehouses.upsert(warehouse("WH-SZ", "CN", {Region.NA: ("4.00", 12)}))  # SZ stops shipping to Asia

    lock = inventory.lock_order("ord_1", [line(MUG, 1)], "JP")

    assert not lock.locked
    assert lock.shortages == [StockShortage(sku=MUG, requested=1, available=0)]
    assert [(s.action, s.detail) for s in lock.suggestions] == [
        ("cancel", "cancel and refund the order (no warehouse ships to JP)")
    ]
    assert moves(engine) == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ((AllocationRule.COST, AllocationRule.DAYS), "WH-SZ"),  # 4.00 beats 6.00
        ((AllocationRule.DAYS,), "WH-LA"),  # 3 days beats 12
        ((AllocationRule.SAME_REGION, AllocationRule.COST), "WH-LA"),
    ],
)
def test_the_configured_rules_decide_between_warehouses(
    engine: Engine, warehouses: WarehouseService, rules: tuple[AllocationRule, ...], expected: str
) -> None:
    inventory = InventoryService(engine, warehouses, rules=rules)
    for code in ("WH-SZ", "WH-LA", "WH-FRA"):
        inventory.set_on_hand(code, MUG, 10)

    assert inventory.lock_order("ord_1", [line(MUG)], "US").warehouse == expected


# -------------------------------------------------------------- splits
def test_an_order_no_single_warehouse_can_fill_is_split_and_shipped_part_by_part(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 5)  # Frankfurt has mugs, no tees
    inventory.set_on_hand("WH-SZ", TEE, 5)  # Shenzhen has tees, no mugs
    inventory.set_on_hand("WH-LA", TEE, 50)  # plenty of tees, but Los Angeles does not ship to Europe

    lock = inventory.lock_order("ord_1", [line(MUG, 2), line(TEE, 1)], "DE")

    assert lock.locked
    assert lock.warehouse is None
    assert lock.parts == [part("WH-FRA", (0, MUG, 2)), part("WH-SZ", (1, TEE, 1))]
    assert sorted((m.warehouse, m.line_no, m.sku, m.quantity) for m in moves(engine, "ord_1", "lock")) == [
        ("WH-FRA", 0, MUG, 2),
        ("WH-SZ", 1, TEE, 1),
    ]
    assert level(inventory, TEE, "WH-LA").locked == 0

    assert inventory.ship_order("ord_1", "WH-FRA") == 2  # the Frankfurt parcel leaves first
    mug, tee = level(inventory, MUG, "WH-FRA"), level(inventory, TEE, "WH-SZ")
    assert (mug.on_hand, mug.locked) == (3, 0)
    assert (tee.on_hand, tee.locked) == (5, 1)  # the Shenzhen part is still held, not shipped
    assert inventory.ship_order("ord_1", "WH-FRA") == 0

    assert inventory.ship_order("ord_1", "WH-SZ") == 1
    tee = level(inventory, TEE, "WH-SZ")
    assert (tee.on_hand, tee.locked) == (4, 0)
    assert inventory.release_order("ord_1") == 0


def test_one_line_split_over_two_warehouses_has_a_ledger_row_in_each(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 2)
    inventory.set_on_hand("WH-SZ", MUG, 3)

    lock = inventory.lock_order("ord_1", [line(MUG, 4)], "DE")

    assert lock.locked
    assert lock.parts == [part("WH-FRA", (0, MUG, 2)), part("WH-SZ", (0, MUG, 2))]
    assert sorted((m.warehouse, m.quantity) for m in moves(engine, "ord_1", "lock")) == [
        ("WH-FRA", 2),
        ("WH-SZ", 2),
    ]

    assert inventory.ship_order("ord_1", "WH-SZ") == 2
    assert inventory.release_order("ord_1") == 2  # only the Frankfurt part was still held
    assert (level(inventory, MUG, "WH-FRA").on_hand, level(inventory, MUG, "WH-SZ").on_hand) == (2, 1)


# -------------------------------------------------------------- shortages
def test_short_stock_locks_nothing_and_suggests_a_transfer_a_restock_or_cancelling(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 2)
    inventory.set_on_hand("WH-SZ", MUG, 1)
    inventory.set_on_hand("WH-LA", MUG, 4)  # does not ship to Europe: a transfer could help
    inventory.set_on_hand("WH-FRA", TEE, 3)

    lock = inventory.lock_order("ord_1", [line(TEE, 1), line(MUG, 8)], "DE")

    assert not lock.locked
    assert lock.parts == []
    assert lock.shortages == [StockShortage(sku=MUG, requested=8, available=3)]
    assert [(s.action, s.detail) for s in lock.suggestions] == [
        ("transfer", f"transfer 4 x {MUG} to WH-FRA from WH-LA (holds 4)"),
        ("wait-for-restock", f"wait for restock of 1 x {MUG}"),
        ("cancel", "cancel and refund the order"),
    ]
    assert [s.locked for s in inventory.levels()] == [0, 0, 0, 0]
    assert moves(engine) == []
    assert claims(engine) == []


# -------------------------------------------------------------- daily capacity
def test_a_warehouse_at_its_daily_capacity_gives_way_to_one_with_room(
    engine: Engine, warehouses: WarehouseService, inventory: InventoryService
) -> None:
    warehouses.upsert(warehouse("WH-FRA", "DE", {Region.EU: ("5.00", 3)}, capacity=1))
    warehouses.upsert(warehouse("WH-AMS", "NL", {Region.EU: ("6.00", 3)}, capacity=1))
    inventory.set_on_hand("WH-FRA", MUG, 10)
    inventory.set_on_hand("WH-AMS", MUG, 10)
    inventory.set_on_hand("WH-SZ", MUG, 10)  # ships to Europe, but from outside it

    first = inventory.lock_order("ord_1", [line(MUG)], "DE")
    second = inventory.lock_order("ord_2", [line(MUG)], "DE")

    assert first.warehouse == "WH-FRA"  # cheaper, with room for one
    assert second.warehouse == "WH-AMS"  # Frankfurt is full today
    assert inventory.shipped_today() == {"WH-FRA": 1, "WH-AMS": 1}
    # Both full: capacity is a ranking, not a wall, so the cheaper one in the region takes the third.
    assert inventory.lock_order("ord_3", [line(MUG)], "DE").warehouse == "WH-FRA"


# -------------------------------------------------------------- reservations
def test_a_paid_reservation_is_locked_in_the_same_warehouse_and_reserved_drops_to_zero(
    engine: Engine, inventory: InventoryService, request: pytest.FixtureRequest
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 3)
    inventory.set_on_hand("WH-SZ", MUG, 10)
    lines = [line(MUG, 3)]

    reservation = inventory.reserve_order("ord_1", lines, "DE")
    assert reservation.reserved
    assert reservation.parts == [part("WH-FRA", (0, MUG, 3))]
    assert (level(inventory, MUG, "WH-FRA").reserved, level(inventory, MUG, "WH-FRA").available) == (3, 0)
    # While it is reserved another buyer gets Shenzhen's stock, not Frankfurt's.
    assert inventory.lock_order("ord_other", [line(MUG, 1)], "DE").warehouse == "WH-SZ"

    lock = inventory.lock_order("ord_1", lines, "DE")

    assert lock.locked
    assert lock.parts == reservation.parts
    fra = level(inventory, MUG, "WH-FRA")
    assert (fra.on_hand, fra.locked, fra.reserved, fra.available) == (3, 3, 0, 0)
    assert [m.kind for m in moves(engine, "ord_1")].count("lock_from_reserve") == 1


def test_a_lock_refused_for_a_reserved_order_keeps_the_reservation(
    engine: Engine, inventory: InventoryService, request: pytest.FixtureRequest
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 3)
    inventory.set_on_hand("WH-SZ", MUG, 1)
    lines = [line(MUG, 2)]
    assert inventory.reserve_order("ord_1", lines, "DE").reserved

    # The operator asks for Shenzhen, which cannot fill the order: nothing may change.
    refused = inventory.lock_order("ord_1", lines, "DE", generation=1, warehouse="WH-SZ")

    assert not refused.locked
    fra = level(inventory, MUG, "WH-FRA")
    assert (fra.reserved, fra.locked) == (2, 0)
    assert [m.kind for m in moves(engine, "ord_1")] == ["reserve"]


def test_cancelling_an_unpaid_order_frees_its_reservation(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 5)
    inventory.set_on_hand("WH-FRA", TEE, 5)
    inventory.reserve_order("ord_keep", [line(MUG, 1)], "DE")
    assert inventory.reserve_order("ord_1", [line(MUG, 2), line(TEE, 3)], "DE").reserved

    assert inventory.release_order("ord_1") == 5
    assert inventory.release_order("ord_1") == 0

    mug, tee = level(inventory, MUG, "WH-FRA"), level(inventory, TEE, "WH-FRA")
    assert (mug.reserved, mug.available) == (1, 4)  # the other order keeps its reservation
    assert (tee.reserved, tee.available) == (0, 5)
    assert sorted(m.kind for m in moves(engine, "ord_1")) == ["reserve", "reserve", "unreserve", "unreserve"]


def test_a_reservation_reports_scarce_and_tight_skus(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 10, safety_stock=4)
    inventory.set_on_hand("WH-FRA", TEE, 10, safety_stock=2)

    reservation = inventory.reserve_order("ord_1", [line(MUG, 5), line(TEE, 1)], "DE")

    assert reservation.reserved
    assert reservation.scarce == []
    assert reservation.tight == [MUG]  # 5 left, under twice its safety stock of 4
    assert inventory.reserve_order("ord_2", [line(MUG, 1)], "DE").scarce == [MUG]  # 4 left: at it


# -------------------------------------------------------------- low stock and sellable
def test_a_low_stock_event_opens_once_and_closes_on_restock(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 10, safety_stock=3)
    inventory.lock_order("ord_1", [line(MUG, 7)], "DE")
    assert inventory.low_stock() == []  # 3 available: at the safety stock, not under it

    inventory.lock_order("ord_2", [line(MUG, 1)], "DE")
    [event] = inventory.low_stock()
    assert (event.warehouse, event.sku, event.available, event.safety_stock) == ("WH-FRA", MUG, 2, 3)
    assert event.resolved_at is None

    inventory.lock_order("ord_3", [line(MUG, 1)], "DE")
    inventory.lock_order("ord_4", [line(MUG, 1)], "DE")
    assert [e.id for e in inventory.low_stock(open_only=False)] == [event.id]  # not duplicated

    inventory.set_on_hand("WH-FRA", MUG, 11)  # 1 available: still under
    assert [e.id for e in inventory.low_stock()] == [event.id]
    inventory.set_on_hand("WH-FRA", MUG, 20)  # 10 available

    assert inventory.low_stock() == []
    [closed] = inventory.low_stock(open_only=False)
    assert closed.id == event.id
    assert closed.resolved_at is not None


def test_a_low_stock_event_is_per_warehouse(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 2, safety_stock=2)
    inventory.set_on_hand("WH-SZ", MUG, 50, safety_stock=2)

    inventory.lock_order("ord_1", [line(MUG, 1)], "DE")

    assert [(e.warehouse, e.available) for e in inventory.low_stock()] == [("WH-FRA", 1)]


def test_a_low_stock_event_closes_when_a_release_gives_the_stock_back(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 10, safety_stock=3)
    inventory.lock_order("ord_1", [line(MUG, 8)], "DE")
    assert len(inventory.low_stock()) == 1

    inventory.release_order("ord_1")  # the buyer cancelled: 10 available again

    assert level(inventory, MUG, "WH-FRA").available == 10
    assert inventory.low_stock() == []


def test_sellable_is_stock_above_safety_stock_summed_and_never_negative(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 10, safety_stock=3)  # 7 sellable
    inventory.set_on_hand("WH-LA", MUG, 2, safety_stock=5)  # under its safety stock: 0, not -3
    inventory.set_on_hand("WH-SZ", MUG, 4)  # 4
    inventory.set_on_hand("WH-FRA", TEE, 1, safety_stock=2)

    assert inventory.sellable() == {MUG: 11, TEE: 0}
    assert inventory.sellable(MUG) == {MUG: 11}

    inventory.lock_order("ord_1", [line(MUG, 6)], "DE")  # Frankfurt: 4 available, 1 above safety
    assert inventory.sellable(MUG) == {MUG: 5}
    inventory.reserve_order("ord_2", [line(MUG, 3)], "DE")  # Frankfurt: 1 available, under safety
    assert inventory.sellable(MUG) == {MUG: 4}
    assert inventory.sellable("NEVER-STOCKED") == {}


# -------------------------------------------------------------- CSV
def test_an_exported_stock_csv_parses_back_to_the_same_counts(
    engine: Engine, warehouses: WarehouseService, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-FRA", MUG, 10, safety_stock=3)
    inventory.set_on_hand("WH-SZ", MUG, 4)
    inventory.set_on_hand("WH-SZ", TEE, 7, safety_stock=1)
    inventory.lock_order("ord_1", [line(MUG, 2)], "DE")
    inventory.reserve_order("ord_2", [line(TEE, 1)], "JP")

    text = warehouses.export_stock_csv()

    assert text.splitlines() == [
        "warehouse,sku,on_hand,locked,reserved,available,safety_stock",
        "WH-FRA,MUG-BLUE,10,2,0,8,3",
        "WH-SZ,MUG-BLUE,4,0,0,4,0",
        "WH-SZ,TEE-L,7,0,1,6,1",
    ]
    rows = parse_stock_csv(text)
    assert [r[1:] for r in rows] == [
        (s.warehouse, s.sku, s.on_hand, s.safety_stock) for s in inventory.levels()
    ]

    # An edited export imports back: counted quantities change, held stock stays.
    for _, code, sku, on_hand, safety in parse_stock_csv(
        text.replace("WH-SZ,MUG-BLUE,4,", "WH-SZ,MUG-BLUE,9,")
    ):
        inventory.set_on_hand(code, sku, on_hand, safety)
    assert level(inventory, MUG, "WH-SZ").on_hand == 9
    assert level(inventory, MUG, "WH-FRA").locked == 2
    assert warehouses.export_stock_csv() == text.replace("WH-SZ,MUG-BLUE,4,0,0,4,", "WH-SZ,MUG-BLUE,9,0,0,9,")


def test_a_csv_with_only_the_required_columns_parses() -> None:
    assert parse_stock_csv("warehouse,sku,on_hand\nWH-FRA, MUG-BLUE , 5 \n") == [(2, "WH-FRA", MUG, 5, None)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "warehouse,sku,on_hand\nWH-FRA,MUG-BLUE,5\nWH-SZ,TEE-L,ten\n",
            r"^line 3, column on_hand: 'ten' must be a whole number",
        ),
        ("warehouse,sku,on_hand\nWH-FRA,MUG-BLUE,2.5\n", r"^line 2, column on_hand: '2.5' must be a whole"),
        ("warehouse,sku,on_hand,safety_stock\nWH-FRA,MUG-BLUE,5,x\n", r"^line 2, column safety_stock: 'x'"),
        (
            "warehouse,sku,on_hand\nWH-FRA,MUG-BLUE,5\nWH-FRA,TEE-L,-1\n",
            r"^line 3, column on_hand: -1 cannot be negative$",
        ),
        (
            "warehouse,sku,on_hand,safety_stock\nWH-FRA,MUG-BLUE,5,-2\n",
            r"^line 2, column safety_stock: -2 cannot be negative$",
        ),
        ("warehouse,sku,on_hand\nWH-FRA,,5\n", r"^line 2: warehouse and sku are required"),
        ("warehouse,sku,count\nWH-FRA,MUG-BLUE,5\n", r"^header: missing column\(s\) on_hand$"),
        ("sku\nMUG-BLUE\n", r"^header: missing column\(s\) on_hand, warehouse$"),
        ("", r"^header: missing column\(s\) on_hand, sku, warehouse$"),
    ],
)
def test_a_bad_csv_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(BadCsv, match=message):
        parse_stock_csv(text)


def test_a_row_missing_its_on_hand_field_is_refused_naming_the_line() -> None:
    with pytest.raises(BadCsv, match=r"^line 3, column on_hand: missing"):
        parse_stock_csv("warehouse,sku,on_hand\nWH-FRA,MUG-BLUE,5\nWH-FRA,TEE-L\n")


def test_a_bad_row_after_a_blank_line_is_named_by_its_real_line() -> None:
    with pytest.raises(BadCsv) as refused:
        parse_stock_csv("warehouse,sku,on_hand\nWH-FRA,MUG-BLUE,5\n\nWH-FRA,TEE-L,ten\n")
    assert str(refused.value).startswith("line 4, column on_hand: "), str(refused.value)


def test_moving_a_lock_away_closes_the_old_warehouses_low_stock_event(engine: Engine) -> None:
    inventory = InventoryService(engine)
    inventory.set_on_hand("WH-1", "MUG-BLUE", 5, safety_stock=3)
    inventory.set_on_hand("WH-2", "MUG-BLUE", 5)
    assert inventory.lock_order("ord_1", [line("MUG-BLUE", 3)], "DE", warehouse="WH-1").locked
    assert [(e.warehouse, e.available) for e in inventory.low_stock()] == [("WH-1", 2)]

    moved = inventory.lock_order("ord_1", [line("MUG-BLUE", 3)], "DE", generation=1, warehouse="WH-2")

    assert moved.warehouse == "WH-2"
    assert inventory.low_stock() == [], "WH-1 is back to 5 available, above its safety stock of 3"
