"""Multi-warehouse allocation under load: 200 concurrent orders for 50 units across 3 warehouses lock
exactly 50 and oversell none, on SQLite and PostgreSQL; a naive allocator under the same load does not."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TypeVar

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.allocation import AllocationPlan, ShippingOption, StockShortage, WarehouseInfo
from domain.effects import StockLock
from domain.regions import Region, region_of
from services.db import transaction
from services.inventory import InventoryService
from services.tables import Stock, StockAllocation, StockMove
from services.warehouses import WarehouseService
from tests.services.test_inventory import (
    assert_stock_consistent,
    line,
    moves,
    run_together,
)

R = TypeVar("R")

THREADS = 32
ORDERS = 200
MUG, TEE = "MUG-BLUE", "TEE-L"
DESTINATIONS = ("DE", "US", "JP")
# 50 mugs: Frankfurt and Los Angeles ship only within their region, Shenzhen ships everywhere.
MUGS = {"WH-FRA": 20, "WH-LA": 20, "WH-SZ": 10}
# 50 tees spread the other way, so most mug-and-tee orders must split.
TEES = {"WH-FRA": 5, "WH-LA": 5, "WH-SZ": 40}


def lanes(**costs: str) -> dict[Region, ShippingOption]:
    return {Region(region): ShippingOption(cost=Decimal(cost), days=3) for region, cost in costs.items()}


def info(code: str, country: str, shipping: dict[Region, ShippingOption]) -> WarehouseInfo:
    return WarehouseInfo(code=code, country=country, region=region_of(country), shipping=shipping)


REGIONAL = [
    info("WH-FRA", "DE", lanes(eu="5.00")),
    info("WH-LA", "US", lanes(na="6.00")),
    info("WH-SZ", "CN", lanes(na="4.00", eu="4.50", asia="2.00")),
]
# Every warehouse ships everywhere, at a price: any order may split over any of them.
GLOBAL = [
    info("WH-FRA", "DE", lanes(eu="5.00", na="9.00", asia="11.00")),
    info("WH-LA", "US", lanes(na="6.00", eu="9.50", asia="8.00")),
    info("WH-SZ", "CN", lanes(na="4.00", eu="4.50", asia="2.00")),
]


# -------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _stock_stays_consistent(engine: Engine) -> Iterator[None]:
    yield
    assert_stock_consistent(engine)


def setup(
    engine: Engine, warehouses: list[WarehouseInfo], stock: dict[str, dict[str, int]]
) -> InventoryService:
    registry = WarehouseService(engine)
    for warehouse in warehouses:
        registry.upsert(warehouse)
    inventory = InventoryService(engine, registry)
    for sku, held in stock.items():
        for code, units in held.items():
            inventory.set_on_hand(code, sku, units)
    return inventory


def unwrap(results: Sequence[R | Exception]) -> list[R]:
    """The results, or the first exception any call raised (so an xfail can name its type)."""
    for result in results:
        if isinstance(result, Exception):
            raise result
    return [r for r in results if not isinstance(r, Exception)]


def stock_rows(engine: Engine) -> list[Stock]:
    with Session(engine) as session:
        return list(session.exec(select(Stock)).all())


def totals(engine: Engine) -> tuple[int, int, int]:
    """(on_hand, locked, reserved) summed over every stock row."""
    rows = stock_rows(engine)
    return sum(r.on_hand for r in rows), sum(r.locked for r in rows), sum(r.reserved for r in rows)


def held_by_order(engine: Engine, kind: str) -> dict[str, dict[str, int]]:
    """order -> sku -> units still held as `kind` (lock or reserve) according to the ledger."""
    closing = {"lock": {"release", "ship"}, "reserve": {"unreserve", "lock_from_reserve"}}[kind]
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for move in moves(engine):
        if move.kind == kind:
            held[move.order_id][move.sku] += move.quantity
        elif move.kind in closing:
            held[move.order_id][move.sku] -= move.quantity
    still = {order: {sku: q for sku, q in skus.items() if q} for order, skus in held.items()}
    return {order: skus for order, skus in still.items() if skus}


def assert_ships_there(result: StockLock, destination: str, warehouses: list[WarehouseInfo]) -> None:
    by_code = {w.code: w for w in warehouses}
    for part in result.parts:
        assert region_of(destination) in by_code[part.warehouse].shipping, (part.warehouse, destination)


def orders_for(count: int) -> dict[str, str]:
    """order id -> destination country."""
    return {f"ord_{i:03d}": DESTINATIONS[i % len(DESTINATIONS)] for i in range(count)}


# -------------------------------------------------------------- the headline
def test_200_concurrent_orders_for_50_units_across_3_warehouses_lock_exactly_50(engine: Engine) -> None:
    inventory = setup(engine, REGIONAL, {MUG: MUGS})
    orders = orders_for(ORDERS)

    results = unwrap(
        run_together(lambda o: inventory.lock_order(o, [line(MUG)], orders[o]), list(orders), threads=THREADS)
    )
    outcome = dict(zip(orders, results, strict=True))

    winners = {o for o, r in outcome.items() if r.locked}
    assert len(winners) == 50
    on_hand, locked, reserved = totals(engine)
    assert (on_hand, locked, reserved) == (50, 50, 0)
    for row in stock_rows(engine):
        assert row.on_hand - row.locked - row.reserved == 0, row  # sold out, never below zero
        assert row.locked == MUGS[row.warehouse]
    for order_id, result in outcome.items():
        if result.locked:
            assert len(result.parts) == 1
            assert [(ln.sku, ln.quantity) for ln in result.parts[0].lines] == [(MUG, 1)]
            assert_ships_there(result, orders[order_id], REGIONAL)
        else:
            assert result.parts == []
            assert result.shortages == [StockShortage(sku=MUG, requested=1, available=0)]
    assert held_by_order(engine, "lock") == {o: {MUG: 1} for o in winners}
    assert len(moves(engine, kind="lock")) == 50


def test_200_concurrent_two_sku_orders_lock_whole_or_not_at_all_splitting_where_needed(
    engine: Engine,
) -> None:
    inventory = setup(engine, GLOBAL, {MUG: MUGS, TEE: TEES})
    orders = orders_for(ORDERS)
    lines = {o: [line(MUG), line(TEE)] if i % 2 else [line(TEE), line(MUG)] for i, o in enumerate(orders)}

    results = unwrap(
        run_together(lambda o: inventory.lock_order(o, lines[o], orders[o]), list(orders), threads=THREADS)
    )
    outcome = dict(zip(orders, results, strict=True))

    winners = {o for o, r in outcome.items() if r.locked}
    assert len(winners) == 50  # 50 mugs and 50 tees, and any order may split: nothing is stranded
    assert totals(engine) == (100, 100, 0)
    for row in stock_rows(engine):
        assert row.on_hand - row.locked - row.reserved == 0, row
    held = held_by_order(engine, "lock")
    for order_id, result in outcome.items():
        if result.locked:
            assert held[order_id] == {MUG: 1, TEE: 1}, f"{order_id} holds {held[order_id]}"
            planned = sorted((ln.sku, ln.quantity) for p in result.parts for ln in p.lines)
            assert planned == [(MUG, 1), (TEE, 1)]
        else:
            assert order_id not in held, f"{order_id} was refused but holds {held[order_id]}"
            assert result.shortages  # refused only when a SKU had run out everywhere
    splits = [o for o in winners if len(outcome[o].parts) == 2]
    # No warehouse holds both SKUs for more than min(mugs, tees) orders: 5 + 5 + 10 = 20 at most whole.
    assert len(splits) >= 30
    assert {m.order_id for m in moves(engine, kind="lock")} == winners


# -------------------------------------------------------------- the control
def naive_lock(engine: Engine, order_id: str, sku: str) -> bool:
    """How not to allocate: read availability in one transaction, pick the fullest warehouse, wait,
    then write in another transaction with no guard in SQL and no claim."""
    with transaction(engine) as session:
        rows = session.exec(select(Stock).where(Stock.sku == sku)).all()
        free = {r.warehouse: r.on_hand - r.locked - r.reserved for r in rows}
    chosen = max(sorted(free), key=lambda code: free[code])
    if free[chosen] < 1:
        return False
    time.sleep(0.02)  # the window in which other buyers read the same availability
    with transaction(engine) as session:
        session.execute(
            update(Stock)
            .where(col(Stock.warehouse) == chosen, col(Stock.sku) == sku)
            .values(locked=col(Stock.locked) + 1)
        )
        session.add(
            StockMove(order_id=order_id, line_no=0, warehouse=chosen, sku=sku, kind="lock", quantity=1)
        )
    return True


def test_control_a_naive_read_then_write_allocator_is_not_safe_under_the_same_load(engine: Engine) -> None:
    """Proves the headline test has teeth: without the guarded update the same load oversells, and only
    the CHECK constraint (on_hand >= locked + reserved) stands in the way."""
    setup(engine, REGIONAL, {MUG: MUGS})
    orders = list(orders_for(ORDERS))

    results = run_together(lambda o: naive_lock(engine, o, MUG), orders, threads=THREADS)

    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, IntegrityError)]
    assert not unexpected, unexpected[0]
    told_yes = sum(1 for r in results if r is True)
    refused_by_check = sum(1 for r in results if isinstance(r, IntegrityError))
    assert told_yes + refused_by_check > 50, "more buyers than units must have been told 'in stock'"
    assert told_yes > 50 or refused_by_check > 0, "the naive allocator looked safe: the load has no teeth"


# -------------------------------------------------------------- reservations, payment, cancellation
def test_concurrent_reservations_then_payments_and_cancellations(
    engine: Engine, request: pytest.FixtureRequest
) -> None:
    inventory = setup(engine, REGIONAL, {MUG: MUGS})
    orders = orders_for(80)

    reservations = unwrap(
        run_together(
            lambda o: inventory.reserve_order(o, [line(MUG)], orders[o]), list(orders), threads=THREADS
        )
    )
    reserved = {o: r for o, r in zip(orders, reservations, strict=True) if r.reserved}

    assert len(reserved) == 50
    assert totals(engine) == (50, 0, 50)
    for row in stock_rows(engine):
        assert row.reserved == row.on_hand, row  # every unit reserved, never more
    assert held_by_order(engine, "reserve") == {o: {MUG: 1} for o in reserved}
    for order_id, reservation in reserved.items():
        [part] = reservation.parts
        assert_ships_there(StockLock(locked=True, parts=reservation.parts), orders[order_id], REGIONAL)
        assert [(ln.sku, ln.quantity) for ln in part.lines] == [(MUG, 1)]

    # Half the reserved orders pay while every order without a reservation tries to lock too: the
    # reservations hold, so each payer gets its own unit and nobody else gets any.
    payers = sorted(reserved)[::2]
    unpaid = sorted(set(reserved) - set(payers))
    unreserved = sorted(set(orders) - set(reserved))
    attempts = payers + unreserved
    locks = unwrap(
        run_together(lambda o: inventory.lock_order(o, [line(MUG)], orders[o]), attempts, threads=THREADS)
    )
    outcome = dict(zip(attempts, locks, strict=True))

    for order_id in payers:
        assert outcome[order_id].locked
        assert outcome[order_id].parts == reserved[order_id].parts  # locked where it was reserved
    for order_id in unreserved:
        assert not outcome[order_id].locked
    assert totals(engine) == (50, len(payers), len(unpaid))
    assert held_by_order(engine, "lock") == {o: {MUG: 1} for o in payers}
    assert held_by_order(engine, "reserve") == {o: {MUG: 1} for o in unpaid}

    # The unpaid ones are cancelled, concurrently: their reservations are freed, the locks stay.
    released = unwrap(run_together(inventory.release_order, unpaid, threads=THREADS))

    assert released == [1] * len(unpaid)
    assert totals(engine) == (50, len(payers), 0)
    assert held_by_order(engine, "reserve") == {}
    assert sum(inventory.sellable(MUG).values()) == 50 - len(payers)


# -------------------------------------------------------------- lock ordering between orders
def test_two_orders_swapping_warehouses_at_once_both_move(
    engine: Engine, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Operators move order A from WH-1 to WH-2 and order B from WH-2 to WH-1 at the same moment.

    Each reassignment first releases its old lock (taking that stock row's write lock) and then locks
    the new warehouse's row: A holds WH-1 and waits for WH-2, B holds WH-2 and waits for WH-1. The
    barrier in _plan only makes both releases happen before either lock; on SQLite writers are
    serialised by BEGIN IMMEDIATE, so the interleaving cannot happen there and nothing is forced.
    """
    inventory = InventoryService(engine)
    for warehouse in ("WH-1", "WH-2"):
        inventory.set_on_hand(warehouse, MUG, 5)
    assert inventory.lock_order("ord_a", [line(MUG, 2)], "DE", warehouse="WH-1").locked
    assert inventory.lock_order("ord_b", [line(MUG, 3)], "DE", warehouse="WH-2").locked
    if engine.dialect.name == "postgresql":
        plan, barrier = InventoryService._plan, threading.Barrier(2)

        def plan_together(self: InventoryService, *args: object, **kwargs: object) -> AllocationPlan:
            # Both try to plan at once. With the stock rows locked up front in one order the second
            # cannot get here until the first commits: the barrier then times out, which is the fix.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=2)
            return plan(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(InventoryService, "_plan", plan_together)

    moves_to = {"ord_a": ("WH-2", 2), "ord_b": ("WH-1", 3)}
    results = unwrap(
        run_together(
            lambda o: inventory.lock_order(
                o, [line(MUG, moves_to[o][1])], "DE", generation=1, warehouse=moves_to[o][0]
            ),
            list(moves_to),
        )
    )

    assert [r.warehouse for r in results] == ["WH-2", "WH-1"]
    assert held_by_order(engine, "lock") == {"ord_a": {MUG: 2}, "ord_b": {MUG: 3}}
    assert {(m.order_id, m.warehouse) for m in moves(engine, kind="lock") if m.generation == 1} == {
        ("ord_a", "WH-2"),
        ("ord_b", "WH-1"),
    }


def test_claims_are_one_per_locked_order(engine: Engine) -> None:
    """A refused order leaves no claim; a locked one exactly one, holding the plan it returned."""
    inventory = setup(engine, REGIONAL, {MUG: {"WH-FRA": 3}})
    orders = {f"ord_{i}": "DE" for i in range(12)}

    results = unwrap(run_together(lambda o: inventory.lock_order(o, [line(MUG)], "DE"), list(orders)))

    with Session(engine) as session:
        rows = session.exec(select(StockAllocation)).all()
    locked = {o: r for o, r in zip(orders, results, strict=True) if r.locked}
    assert len(locked) == 3
    assert {(c.order_id, c.generation, c.kind) for c in rows} == {(o, 0, "lock") for o in locked}
    for claim in rows:
        assert AllocationPlan.model_validate(claim.plan).parts == locked[claim.order_id].parts
