"""Stock as a seller sees it: no overselling under concurrency, whole orders or nothing, exact release."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import pytest
from sqlalchemy import Engine, inspect, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.allocation import AllocationPlan, StockShortage
from domain.effects import StockLevel
from domain.models import OrderLine, Part, PartLine
from services.db import transaction
from services.inventory import InventoryService, SkuSpelling, StockConflict
from services.tables import Stock, StockAllocation, StockMove
from services.warehouses import BadCsv, WarehouseService, parse_stock_csv, unregistered

T = TypeVar("T")
R = TypeVar("R")

WH = "WH-1"
DEST = "DE"  # unregistered warehouses ship anywhere, so the destination only has to be a real country
THREADS = 25

# How each ledger kind moves the two counters of a stock row.
LOCKED_BY_KIND = {"lock": 1, "release": -1, "ship": -1}
RESERVED_BY_KIND = {"reserve": 1, "unreserve": -1, "lock_from_reserve": -1}


# -------------------------------------------------------------- helpers
def line(sku: str, quantity: int = 1) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("9.90"))


def part(warehouse: str, *lines: tuple[int, str, int]) -> Part:
    """A part from (line_no, sku, quantity) triples."""
    return Part(
        warehouse=warehouse,
        lines=[PartLine(line_no=no, sku=sku, quantity=quantity) for no, sku, quantity in lines],
    )


def run_together(fn: Callable[[T], R], items: Sequence[T], *, threads: int = THREADS) -> list[R | Exception]:
    """Call fn on every item from `threads` threads released by one barrier; results in item order."""
    threads = min(threads, len(items))
    barrier = threading.Barrier(threads)
    results: list[R | Exception | None] = [None] * len(items)

    def worker(indices: range) -> None:
        barrier.wait(timeout=30)
        for i in indices:
            try:
                results[i] = fn(items[i])
            except Exception as exc:
                results[i] = exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(worker, [range(start, len(items), threads) for start in range(threads)]))
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def no_errors(results: list[R | Exception]) -> list[R]:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} calls raised, first: {errors[0]!r}"
    return [r for r in results if not isinstance(r, Exception)]


def level(inventory: InventoryService, sku: str, warehouse: str = WH) -> StockLevel:
    found = inventory.get(warehouse, sku)
    assert found is not None, f"no stock row for {warehouse}/{sku}"
    return found


def moves(engine: Engine, order_id: str | None = None, kind: str | None = None) -> list[StockMove]:
    query = select(StockMove)
    if order_id is not None:
        query = query.where(StockMove.order_id == order_id)
    if kind is not None:
        query = query.where(StockMove.kind == kind)
    with Session(engine) as session:
        return list(session.exec(query).all())


def assert_stock_consistent(engine: Engine) -> None:
    """Every row adds up, nothing is negative, and both locked and reserved equal what the ledger says
    is still held: locked = lock - release - ship, reserved = reserve - unreserve - lock_from_reserve."""
    inventory = InventoryService(engine)
    with Session(engine) as session:
        rows = session.exec(select(Stock)).all()
        ledger = session.exec(select(StockMove)).all()
    locked: dict[tuple[str, str], int] = defaultdict(int)
    reserved: dict[tuple[str, str], int] = defaultdict(int)
    for move in ledger:
        assert move.kind in LOCKED_BY_KIND or move.kind in RESERVED_BY_KIND, f"unknown move {move}"
        key = (move.warehouse, move.sku)
        locked[key] += LOCKED_BY_KIND.get(move.kind, 0) * move.quantity
        reserved[key] += RESERVED_BY_KIND.get(move.kind, 0) * move.quantity
    for row in rows:
        stock = level(inventory, row.sku, row.warehouse)
        assert stock.on_hand == stock.available + stock.locked + stock.reserved, stock
        assert stock.available >= 0, stock
        assert stock.locked >= 0, stock
        assert stock.reserved >= 0, stock
        key = (row.warehouse, row.sku)
        assert stock.locked == locked.pop(key, 0), f"ledger disagrees on locked with {stock}"
        assert stock.reserved == reserved.pop(key, 0), f"ledger disagrees on reserved with {stock}"
    assert not {k: v for k, v in locked.items() if v}, f"ledger locks stock with no stock row: {locked}"
    assert not {k: v for k, v in reserved.items() if v}, f"ledger reserves stock with no row: {reserved}"


@pytest.fixture(autouse=True)
def _stock_stays_consistent(engine: Engine) -> Iterator[None]:
    yield
    assert_stock_consistent(engine)


@pytest.fixture
def inventory(engine: Engine) -> InventoryService:
    return InventoryService(engine)


# services/tables.py: StockMove.kind is VARCHAR(16) but the service writes "lock_from_reserve" (17
# characters) when a lock takes over a reservation. SQLite ignores VARCHAR lengths; PostgreSQL refuses
# the row, so every lock of a reserved order raises DataError there and the reservation never converts.
@dataclass
class ForcedRace:
    """What the forced race saw: the first claim read of every attempt, and what each allocation did."""

    first_reads: list[AllocationPlan | None] = field(default_factory=list)
    allocations: list[str] = field(default_factory=list)  # "allocated" or "conflict" per _allocate call


def claims_together(monkeypatch: pytest.MonkeyPatch, attempts: int) -> ForcedRace:
    """Force the retry race: every attempt reads "not claimed yet" before any attempt allocates.

    That is what happens when Temporal retries a lock activity whose first attempt timed out but is
    still running. Each thread's first `_claimed` read waits at a barrier after reading, so all of them
    go on to `_allocate` believing they are first; the StockAllocation claim must stop all but one.
    The schedule is forced, the service's own code runs unchanged.
    """
    claimed, allocate = InventoryService._claimed, InventoryService._allocate
    barrier = threading.Barrier(attempts)
    checked = threading.local()
    race = ForcedRace()

    def claimed_then_wait(
        self: InventoryService, order_id: str, generation: int, kind: str
    ) -> AllocationPlan | None:
        result = claimed(self, order_id, generation, kind)
        if not getattr(checked, "once", False):
            checked.once = True
            race.first_reads.append(result)
            barrier.wait(timeout=30)
        return result

    def allocate_and_record(self: InventoryService, *args: object, **kwargs: object) -> AllocationPlan:
        try:
            plan = allocate(self, *args, **kwargs)  # type: ignore[arg-type]
        except IntegrityError:
            race.allocations.append("conflict")
            raise
        race.allocations.append("allocated")
        return plan

    monkeypatch.setattr(InventoryService, "_claimed", claimed_then_wait)
    monkeypatch.setattr(InventoryService, "_allocate", allocate_and_record)
    return race


def assert_raced(race: ForcedRace, attempts: int = 2) -> None:
    """The race really happened: every attempt read "not claimed" and one lost on the claim."""
    assert race.first_reads == [None] * attempts
    assert sorted(race.allocations) == ["allocated"] + ["conflict"] * (attempts - 1)


def claims(engine: Engine, order_id: str) -> list[StockAllocation]:
    with Session(engine) as session:
        return list(session.exec(select(StockAllocation).where(StockAllocation.order_id == order_id)).all())


# -------------------------------------------------------------- concurrency
def test_fifty_concurrent_orders_for_ten_units_lock_exactly_ten(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    orders = [f"ord_{i:02d}" for i in range(50)]

    results = no_errors(run_together(lambda o: inventory.lock_order(o, [line("MUG-BLUE")], DEST), orders))

    winners = {o for o, r in zip(orders, results, strict=True) if r.locked}
    assert len(winners) == 10
    assert {r.warehouse for r in results if r.locked} == {WH}
    for result in results:
        if not result.locked:
            assert result.parts == []
            assert result.shortages == [StockShortage(sku="MUG-BLUE", requested=1, available=0)]
    stock = level(inventory, "MUG-BLUE")
    assert (stock.on_hand, stock.locked, stock.available) == (10, 10, 0)
    ledger = moves(engine, kind="lock")
    assert len(ledger) == 10
    assert {m.order_id for m in ledger} == winners


def test_concurrent_two_line_orders_are_locked_whole_or_not_at_all(
    engine: Engine, inventory: InventoryService
) -> None:
    # CABLE sorts before DOCK, so a refused order has already taken its cables when the dock runs out:
    # the service must give them back. Single-cable orders compete for the same cables meanwhile.
    inventory.set_on_hand(WH, "CABLE-A", 20)
    inventory.set_on_hand(WH, "DOCK-Z", 7)
    orders: dict[str, list[OrderLine]] = {}
    for i in range(40):
        pair = [line("CABLE-A", 2), line("DOCK-Z", 1)]
        orders[f"ord_pair_{i:02d}"] = pair if i % 2 else pair[::-1]
    for i in range(20):
        orders[f"ord_cable_{i:02d}"] = [line("CABLE-A", 1)]

    results = no_errors(run_together(lambda o: inventory.lock_order(o, orders[o], DEST), list(orders)))
    outcome = dict(zip(orders, results, strict=True))

    ledger = moves(engine, kind="lock")
    lines_locked = Counter(m.order_id for m in ledger)
    for order_id, lines in orders.items():
        expected_rows = len(lines) if outcome[order_id].locked else 0
        assert lines_locked[order_id] == expected_rows, f"{order_id} is half-locked"
    for m in ledger:
        wanted = next(ln for ln in orders[m.order_id] if ln.sku == m.sku)
        assert m.quantity == wanted.quantity

    pairs = sum(1 for o, r in outcome.items() if r.locked and o.startswith("ord_pair"))
    singles = sum(1 for o, r in outcome.items() if r.locked and o.startswith("ord_cable"))
    cable, dock = level(inventory, "CABLE-A"), level(inventory, "DOCK-Z")
    assert dock.locked == pairs <= 7
    assert cable.locked == 2 * pairs + singles <= 20
    assert (cable.on_hand, dock.on_hand) == (20, 7)
    # Stock only shrank during the run, so a refused order must still be unfillable: none was turned
    # away while enough stock sat unused.
    for order_id, lines in orders.items():
        if not outcome[order_id].locked:
            left = {"CABLE-A": cable.available, "DOCK-Z": dock.available}
            assert any(left[ln.sku] < ln.quantity for ln in lines), f"{order_id} refused with stock left"


def naive_lock(engine: Engine, order_id: str, sku: str, quantity: int) -> bool:
    """How not to lock: read availability in one transaction, write in another, no guard in SQL."""
    with transaction(engine) as session:
        row = session.get(Stock, (WH, sku))
        assert row is not None
        available = row.on_hand - row.locked - row.reserved
    if available < quantity:
        return False
    time.sleep(0.05)  # the window in which every other buyer reads the same availability
    with transaction(engine) as session:
        session.execute(
            update(Stock)
            .where(col(Stock.warehouse) == WH, col(Stock.sku) == sku)
            .values(locked=col(Stock.locked) + quantity)
        )
        session.add(
            StockMove(order_id=order_id, line_no=0, warehouse=WH, sku=sku, kind="lock", quantity=quantity)
        )
    return True


def test_control_a_naive_read_then_write_locker_is_caught_overselling(
    engine: Engine, inventory: InventoryService
) -> None:
    """Proves the concurrency test above has teeth: the same load breaks a locker without the guard."""
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    orders = [f"ord_{i:02d}" for i in range(50)]

    results = run_together(lambda o: naive_lock(engine, o, "MUG-BLUE", 1), orders)

    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, IntegrityError)]
    assert not unexpected, unexpected[0]
    told_yes = sum(1 for r in results if r is True)
    refused_by_check = sum(1 for r in results if isinstance(r, IntegrityError))
    # More buyers than units were told "in stock"; only the CHECK constraint (or nothing) stopped them.
    assert told_yes + refused_by_check > 10
    assert told_yes > 10 or refused_by_check > 0


# -------------------------------------------------------------- retries
def test_a_retried_lock_locks_once_and_names_the_same_warehouse(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 5)
    lines = [line("MUG-BLUE", 2)]

    first = inventory.lock_order("ord_1", lines, DEST)
    again = inventory.lock_order("ord_1", lines, DEST)

    assert first == again
    assert first.locked
    assert first.warehouse == WH
    assert first.parts == [part(WH, (0, "MUG-BLUE", 2))]
    assert level(inventory, "MUG-BLUE").locked == 2
    assert len(moves(engine, "ord_1")) == 1
    assert len(claims(engine, "ord_1")) == 1


def test_concurrent_attempts_of_the_same_lock_lock_once(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    inventory.set_on_hand(WH, "TEE-L", 10)
    lines = [line("MUG-BLUE", 2), line("TEE-L", 1)]
    race = claims_together(monkeypatch, 2)

    results = no_errors(run_together(lambda _: inventory.lock_order("ord_1", lines, DEST), [1, 2]))

    assert_raced(race)
    assert results[0] == results[1]
    assert results[0].locked
    assert results[0].parts == [part(WH, (0, "MUG-BLUE", 2), (1, "TEE-L", 1))]
    assert (level(inventory, "MUG-BLUE").locked, level(inventory, "TEE-L").locked) == (2, 1)
    assert len(moves(engine, "ord_1", "lock")) == 2
    assert len(claims(engine, "ord_1")) == 1


def test_a_concurrent_retry_of_a_lock_that_took_the_last_units_still_reports_locked(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 2)
    race = claims_together(monkeypatch, 2)

    results = no_errors(
        run_together(lambda _: inventory.lock_order("ord_1", [line("MUG-BLUE", 2)], DEST), [1, 2])
    )

    assert_raced(race)
    for result in results:  # the losing attempt must not see the winner's lock as a shortage
        assert result.locked
        assert result.warehouse == WH
        assert result.shortages == []
    assert results[0] == results[1]
    assert level(inventory, "MUG-BLUE").locked == 2


def test_a_concurrent_retry_never_locks_the_order_in_a_second_warehouse(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WH-1 ranks first and holds exactly one unit: a retry that planned again after the first attempt
    # took it would find WH-2 and lock the order twice.
    inventory.set_on_hand("WH-1", "MUG-BLUE", 1)
    inventory.set_on_hand("WH-2", "MUG-BLUE", 5)
    race = claims_together(monkeypatch, 2)

    results = no_errors(
        run_together(lambda _: inventory.lock_order("ord_1", [line("MUG-BLUE", 1)], DEST), [1, 2])
    )

    assert_raced(race)
    held = level(inventory, "MUG-BLUE", "WH-1").locked + level(inventory, "MUG-BLUE", "WH-2").locked
    assert held == 1
    assert results[0].locked
    assert results[0] == results[1]
    assert results[0].warehouse == "WH-1"
    assert {m.warehouse for m in moves(engine, "ord_1", "lock")} == {"WH-1"}


def test_concurrent_attempts_of_the_same_reassignment_move_the_lock_once(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    for warehouse in ("WH-1", "WH-2"):
        inventory.set_on_hand(warehouse, "MUG-BLUE", 5)
    lines = [line("MUG-BLUE", 2)]
    assert inventory.lock_order("ord_1", lines, DEST).warehouse == "WH-1"
    race = claims_together(monkeypatch, 2)

    results = no_errors(
        run_together(
            lambda _: inventory.lock_order("ord_1", lines, DEST, generation=1, warehouse="WH-2"), [1, 2]
        )
    )

    assert_raced(race)
    assert results[0] == results[1]
    assert results[0].warehouse == "WH-2"
    assert (level(inventory, "MUG-BLUE", "WH-1").locked, level(inventory, "MUG-BLUE", "WH-2").locked) == (
        0,
        2,
    )
    assert len(moves(engine, "ord_1", "release")) == 1


def test_a_retried_lock_after_a_refusal_plans_again(engine: Engine, inventory: InventoryService) -> None:
    """A refused lock leaves no claim behind, so the retry after a restock locks."""
    inventory.set_on_hand(WH, "MUG-BLUE", 1)
    assert not inventory.lock_order("ord_1", [line("MUG-BLUE", 2)], DEST).locked
    assert claims(engine, "ord_1") == []

    inventory.set_on_hand(WH, "MUG-BLUE", 2)
    assert inventory.lock_order("ord_1", [line("MUG-BLUE", 2)], DEST).locked
    assert level(inventory, "MUG-BLUE").locked == 2


# -------------------------------------------------------------- out of stock
def test_out_of_stock_names_the_sku_and_locks_nothing(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 3)

    result = inventory.lock_order("ord_1", [line("MUG-BLUE", 5)], DEST)

    assert not result.locked
    assert result.parts == []
    assert result.warehouse is None
    assert result.shortages == [StockShortage(sku="MUG-BLUE", requested=5, available=3)]
    assert [s.action for s in result.suggestions] == ["wait-for-restock", "cancel"]
    assert level(inventory, "MUG-BLUE").locked == 0
    assert moves(engine) == []


def test_one_short_line_of_several_locks_none_of_them(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand(WH, "CABLE-A", 10)
    inventory.set_on_hand(WH, "DOCK-Z", 1)
    inventory.set_on_hand(WH, "MUG-BLUE", 5)

    result = inventory.lock_order(
        "ord_1",
        [line("CABLE-A", 2), line("DOCK-Z", 3), line("MUG-BLUE", 1), line("NEVER-STOCKED", 1)],
        DEST,
    )

    assert not result.locked
    assert result.warehouse is None
    assert result.parts == []
    assert result.shortages == [
        StockShortage(sku="DOCK-Z", requested=3, available=1),
        StockShortage(sku="NEVER-STOCKED", requested=1, available=0),
    ]
    assert [level(inventory, s).locked for s in ("CABLE-A", "DOCK-Z", "MUG-BLUE")] == [0, 0, 0]
    assert moves(engine) == []


def test_lines_spread_over_warehouses_are_locked_as_a_split_in_each(
    engine: Engine, inventory: InventoryService
) -> None:
    # Before multi-warehouse allocation this order was refused; now it ships in two parts.
    inventory.set_on_hand("WH-1", "CABLE-A", 10)
    inventory.set_on_hand("WH-2", "DOCK-Z", 10)

    result = inventory.lock_order("ord_1", [line("CABLE-A"), line("DOCK-Z")], DEST)

    assert result.locked
    assert result.warehouse is None  # no single warehouse
    assert result.parts == [part("WH-1", (0, "CABLE-A", 1)), part("WH-2", (1, "DOCK-Z", 1))]
    assert level(inventory, "CABLE-A", "WH-1").locked == level(inventory, "DOCK-Z", "WH-2").locked == 1
    assert sorted((m.warehouse, m.sku) for m in moves(engine, kind="lock")) == [
        ("WH-1", "CABLE-A"),
        ("WH-2", "DOCK-Z"),
    ]


# -------------------------------------------------------------- warehouse choice, release, ship
def test_the_lock_goes_to_the_first_warehouse_that_can_fill_every_line(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-A", "MUG-BLUE", 50)  # no tees at all
    inventory.set_on_hand("WH-B", "MUG-BLUE", 50)
    inventory.set_on_hand("WH-B", "TEE-L", 1)  # too few tees
    inventory.set_on_hand("WH-C", "MUG-BLUE", 2)
    inventory.set_on_hand("WH-C", "TEE-L", 3)
    inventory.set_on_hand("WH-D", "MUG-BLUE", 9)
    inventory.set_on_hand("WH-D", "TEE-L", 9)

    result = inventory.lock_order("ord_1", [line("MUG-BLUE", 2), line("TEE-L", 2)], DEST)

    assert result.locked
    assert result.warehouse == "WH-C"
    assert result.parts == [part("WH-C", (0, "MUG-BLUE", 2), (1, "TEE-L", 2))]
    assert (level(inventory, "MUG-BLUE", "WH-C").locked, level(inventory, "TEE-L", "WH-C").locked) == (2, 2)
    for warehouse, sku in [("WH-A", "MUG-BLUE"), ("WH-B", "MUG-BLUE"), ("WH-B", "TEE-L"), ("WH-D", "TEE-L")]:
        assert level(inventory, sku, warehouse).locked == 0
    assert {m.warehouse for m in moves(engine)} == {"WH-C"}


def test_release_gives_back_exactly_what_was_locked_once(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 5)
    inventory.set_on_hand(WH, "TEE-L", 5)
    inventory.lock_order("ord_other", [line("MUG-BLUE", 1)], DEST)
    inventory.lock_order("ord_1", [line("MUG-BLUE", 2), line("TEE-L", 3)], DEST)

    assert inventory.release_order("ord_1") == 5
    assert inventory.release_order("ord_1") == 0

    mug, tee = level(inventory, "MUG-BLUE"), level(inventory, "TEE-L")
    assert (mug.on_hand, mug.locked, mug.available) == (5, 1, 4)  # the other order keeps its unit
    assert (tee.on_hand, tee.locked, tee.available) == (5, 0, 5)
    assert len(moves(engine, "ord_1", "release")) == 2
    assert inventory.ship_order("ord_1", WH) == 0  # nothing left to ship once released
    assert level(inventory, "MUG-BLUE").on_hand == 5


def test_ship_deducts_on_hand_and_locked_once_and_then_nothing_is_left_to_release(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 5)
    inventory.set_on_hand(WH, "TEE-L", 5)
    inventory.lock_order("ord_1", [line("MUG-BLUE", 2), line("TEE-L", 3)], DEST)

    assert inventory.ship_order("ord_1", "WH-OTHER") == 0
    assert inventory.ship_order("ord_1", WH) == 3 + 2
    assert inventory.ship_order("ord_1", WH) == 0
    assert inventory.release_order("ord_1") == 0

    mug, tee = level(inventory, "MUG-BLUE"), level(inventory, "TEE-L")
    assert (mug.on_hand, mug.locked, mug.available) == (3, 0, 3)
    assert (tee.on_hand, tee.locked, tee.available) == (2, 0, 2)
    assert len(moves(engine, "ord_1", "ship")) == 2
    assert moves(engine, "ord_1", "release") == []


def test_releasing_an_order_that_never_locked_releases_nothing(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 5)
    inventory.lock_order("ord_big", [line("MUG-BLUE", 6)], DEST)

    assert inventory.release_order("ord_big") == 0
    assert inventory.release_order("ord_unknown") == 0
    assert level(inventory, "MUG-BLUE").locked == 0


# -------------------------------------------------------------- reservations
def test_a_reservation_becomes_the_lock_and_is_not_counted_twice(
    engine: Engine, inventory: InventoryService, request: pytest.FixtureRequest
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 5)
    lines = [line("MUG-BLUE", 2)]

    reservation = inventory.reserve_order("ord_1", lines, DEST)
    assert reservation.reserved
    assert reservation.parts == [part(WH, (0, "MUG-BLUE", 2))]
    assert inventory.reserve_order("ord_1", lines, DEST) == reservation  # a retry reserves nothing more
    assert (level(inventory, "MUG-BLUE").reserved, level(inventory, "MUG-BLUE").available) == (2, 3)

    lock = inventory.lock_order("ord_1", lines, DEST)

    assert lock.locked
    assert lock.parts == reservation.parts
    stock = level(inventory, "MUG-BLUE")
    assert (stock.on_hand, stock.locked, stock.reserved, stock.available) == (5, 2, 0, 3)
    assert len(moves(engine, "ord_1", "lock_from_reserve")) == 1
    assert inventory.release_order("ord_1") == 2  # the lock only: the reservation is already closed


def test_a_reservation_that_cannot_be_filled_reserves_nothing(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 1)

    reservation = inventory.reserve_order("ord_1", [line("MUG-BLUE", 2)], DEST)

    assert not reservation.reserved
    assert reservation.parts == []
    assert reservation.scarce == []
    assert level(inventory, "MUG-BLUE").reserved == 0
    assert moves(engine) == []


# -------------------------------------------------------------- counted stock
def test_set_on_hand_creates_then_updates(engine: Engine, inventory: InventoryService) -> None:
    assert inventory.get(WH, "MUG-BLUE") is None

    created = inventory.set_on_hand(WH, "MUG-BLUE", 12)
    assert created == StockLevel(warehouse=WH, sku="MUG-BLUE", on_hand=12, locked=0, reserved=0, available=12)
    assert inventory.get(WH, "MUG-BLUE") == created

    inventory.lock_order("ord_1", [line("MUG-BLUE", 4)], DEST)
    updated = inventory.set_on_hand(WH, "MUG-BLUE", 20)
    assert (updated.on_hand, updated.locked, updated.available) == (20, 4, 16)
    assert inventory.get(WH, "MUG-BLUE") == updated
    assert inventory.set_on_hand(WH, "MUG-BLUE", 4).available == 0  # down to exactly what is locked


def test_counting_less_than_is_locked_is_refused_and_changes_nothing(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    inventory.lock_order("ord_1", [line("MUG-BLUE", 7)], DEST)

    with pytest.raises(StockConflict, match=r"\b7 locked\b"):
        inventory.set_on_hand(WH, "MUG-BLUE", 6)

    stock = level(inventory, "MUG-BLUE")
    assert (stock.on_hand, stock.locked, stock.available) == (10, 7, 3)


def test_counting_less_than_is_locked_and_reserved_is_refused(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    inventory.lock_order("ord_1", [line("MUG-BLUE", 4)], DEST)
    inventory.reserve_order("ord_2", [line("MUG-BLUE", 3)], DEST)

    with pytest.raises(StockConflict, match=r"\b4 locked and 3 reserved\b"):
        inventory.set_on_hand(WH, "MUG-BLUE", 6)

    assert inventory.set_on_hand(WH, "MUG-BLUE", 7).available == 0


# -------------------------------------------------------------- moving a lock (reassign-warehouse)
def test_reassigning_moves_every_line_to_the_new_warehouse_and_frees_the_old(
    engine: Engine, inventory: InventoryService
) -> None:
    for warehouse in ("WH-1", "WH-2"):
        inventory.set_on_hand(warehouse, "MUG-BLUE", 5)
        inventory.set_on_hand(warehouse, "TEE-L", 5)
    lines = [line("MUG-BLUE", 2), line("TEE-L", 3)]
    assert inventory.lock_order("ord_1", lines, DEST).warehouse == "WH-1"

    moved = inventory.lock_order("ord_1", lines, DEST, generation=1, warehouse="WH-2")
    again = inventory.lock_order("ord_1", lines, DEST, generation=1, warehouse="WH-2")

    assert moved == again
    assert moved.locked
    assert moved.warehouse == "WH-2"
    assert moved.parts == [part("WH-2", (0, "MUG-BLUE", 2), (1, "TEE-L", 3))]
    assert (level(inventory, "MUG-BLUE", "WH-1").locked, level(inventory, "TEE-L", "WH-1").locked) == (0, 0)
    assert (level(inventory, "MUG-BLUE", "WH-2").locked, level(inventory, "TEE-L", "WH-2").locked) == (2, 3)
    assert inventory.ship_order("ord_1", "WH-1") == 0
    assert inventory.ship_order("ord_1", "WH-2") == 5


def test_reassigning_to_a_warehouse_that_cannot_fill_every_line_changes_nothing(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-1", "MUG-BLUE", 5)
    inventory.set_on_hand("WH-1", "TEE-L", 5)
    inventory.set_on_hand("WH-2", "MUG-BLUE", 5)
    inventory.set_on_hand("WH-2", "TEE-L", 1)
    lines = [line("MUG-BLUE", 2), line("TEE-L", 3)]
    inventory.lock_order("ord_1", lines, DEST)

    refused = inventory.lock_order("ord_1", lines, DEST, generation=1, warehouse="WH-2")

    assert not refused.locked
    assert refused.parts == []
    assert [(s.sku, s.requested, s.available) for s in refused.shortages] == [("TEE-L", 3, 1)]
    assert level(inventory, "MUG-BLUE", "WH-1").locked == 2
    assert level(inventory, "MUG-BLUE", "WH-2").locked == 0
    assert len(moves(engine, "ord_1")) == 2  # the two original locks, nothing else


def test_a_lock_moved_back_to_its_first_warehouse_is_a_new_generation(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-1", "MUG-BLUE", 3)
    inventory.set_on_hand("WH-2", "MUG-BLUE", 3)
    lines = [line("MUG-BLUE", 2)]
    inventory.lock_order("ord_1", lines, DEST, warehouse="WH-1")
    inventory.lock_order("ord_1", lines, DEST, generation=1, warehouse="WH-2")
    back = inventory.lock_order("ord_1", lines, DEST, generation=2, warehouse="WH-1")
    assert back.warehouse == "WH-1"
    assert (level(inventory, "MUG-BLUE", "WH-1").locked, level(inventory, "MUG-BLUE", "WH-2").locked) == (
        2,
        0,
    )
    assert sorted((m.generation, m.warehouse) for m in moves(engine, "ord_1", "lock")) == [
        (0, "WH-1"),
        (1, "WH-2"),
        (2, "WH-1"),
    ]
    assert inventory.release_order("ord_1") == 2


# -------------------------------------------------------------- CSV import at scale, SKU spelling, index
def stock_csv(rows: int, on_hand: int = 5, warehouse: str = "WH-BIG") -> str:
    return "warehouse,sku,on_hand\n" + "".join(f"{warehouse},SKU-{i:06d},{on_hand}\n" for i in range(rows))


def test_an_import_over_the_bind_parameter_limit_lands_whole_or_not_at_all(engine: Engine) -> None:
    warehouses = WarehouseService(engine)
    warehouses.upsert(unregistered("WH-BIG"))
    inventory = InventoryService(engine, warehouses)
    rows = 70_000  # more than PostgreSQL's 65 535 bind parameters in one statement

    grown = inventory.import_counts(parse_stock_csv(stock_csv(rows)))

    assert len(grown) == rows
    assert sum(inventory.sellable().values()) == 5 * rows
    inventory.lock_order("ord_1", [line("SKU-069999", 5)], "DE")
    recount = stock_csv(rows, on_hand=9)  # every row grows, but the last one is below what ord_1 holds
    recount = recount.replace("WH-BIG,SKU-069999,9\n", "WH-BIG,SKU-069999,4\n")
    with pytest.raises(StockConflict, match=r"^line 70001: on_hand 4 is below what orders hold: 5 locked"):
        inventory.import_counts(parse_stock_csv(recount))
    assert sum(inventory.sellable().values()) == 5 * (rows - 1)  # not one row of the refused file applied


def test_an_import_opens_and_closes_low_stock_events_like_a_recount(engine: Engine) -> None:
    warehouses = WarehouseService(engine)
    warehouses.upsert(unregistered("WH-BIG"))
    inventory = InventoryService(engine, warehouses)
    inventory.import_counts(
        parse_stock_csv("warehouse,sku,on_hand,safety_stock\nWH-BIG,A,1,3\nWH-BIG,B,5,3\n")
    )
    assert [(e.sku, e.available, e.resolved_at) for e in inventory.low_stock()] == [("A", 1, None)]

    inventory.import_counts(parse_stock_csv("warehouse,sku,on_hand\nWH-BIG,A,4\nWH-BIG,B,2\n"))

    assert [(e.sku, e.available) for e in inventory.low_stock()] == [("B", 2)]
    assert [e.sku for e in inventory.low_stock(open_only=False) if e.resolved_at] == ["A"]


def test_an_import_into_a_warehouse_nobody_registered_is_refused_naming_the_line(engine: Engine) -> None:
    inventory = InventoryService(engine)
    with pytest.raises(BadCsv, match=r"^line 2, column warehouse: no warehouse 'WH-GHOST' is registered"):
        inventory.import_counts(parse_stock_csv("warehouse,sku,on_hand\nWH-GHOST,A,1\n"))
    assert inventory.levels() == []


def test_a_sku_stocked_in_one_case_is_refused_in_another(engine: Engine) -> None:
    warehouses = WarehouseService(engine)
    warehouses.upsert(unregistered("WH-2"))
    inventory = InventoryService(engine, warehouses)
    inventory.set_on_hand("WH-1", "MUG-Blue", 5)

    with pytest.raises(SkuSpelling, match="MUG-BLUE is stocked as MUG-Blue"):
        inventory.set_on_hand("WH-2", "MUG-BLUE", 5)
    with pytest.raises(BadCsv, match=r"^line 2, column sku: 'mug-blue' is stocked as 'MUG-Blue'"):
        inventory.import_counts(parse_stock_csv("warehouse,sku,on_hand\nWH-2,mug-blue,5\n"))

    assert inventory.set_on_hand("WH-2", "MUG-Blue", 3).on_hand == 3  # the stocked spelling is fine
    assert [(s.warehouse, s.sku) for s in inventory.levels()] == [("WH-1", "MUG-Blue"), ("WH-2", "MUG-Blue")]


def test_stock_is_indexed_by_sku_after_migrating(engine: Engine) -> None:
    indexes = inspect(engine).get_indexes("stock")
    assert {"name": "ix_stock_sku", "columns": ["sku"]} in [
        {"name": i["name"], "columns": i["column_names"]} for i in indexes
    ]
