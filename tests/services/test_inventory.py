"""Stock as a seller sees it: no overselling under concurrency, whole orders or nothing, exact release."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TypeVar

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.effects import StockLevel, StockLock, StockShortage
from domain.models import OrderLine
from services.db import transaction
from services.inventory import InventoryService, StockConflict
from services.tables import Stock, StockMove

T = TypeVar("T")
R = TypeVar("R")

WH = "WH-1"
THREADS = 25


# -------------------------------------------------------------- helpers
def line(sku: str, quantity: int = 1) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("9.90"))


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
    """Every row adds up, nothing is negative, and locked equals what the ledger says is still held."""
    inventory = InventoryService(engine)
    with Session(engine) as session:
        rows = session.exec(select(Stock)).all()
        ledger = session.exec(select(StockMove)).all()
    held: dict[tuple[str, str], int] = defaultdict(int)
    for move in ledger:
        held[(move.warehouse, move.sku)] += move.quantity if move.kind == "lock" else -move.quantity
    for row in rows:
        stock = level(inventory, row.sku, row.warehouse)
        assert stock.on_hand == stock.available + stock.locked + stock.reserved, stock
        assert stock.available >= 0, stock
        assert stock.locked >= 0, stock
        assert stock.reserved >= 0, stock
        assert stock.locked == held.pop((row.warehouse, row.sku), 0), f"ledger disagrees with {stock}"
    assert not {k: v for k, v in held.items() if v}, f"ledger holds stock with no stock row: {held}"


@pytest.fixture(autouse=True)
def _stock_stays_consistent(engine: Engine) -> Iterator[None]:
    yield
    assert_stock_consistent(engine)


@pytest.fixture
def inventory(engine: Engine) -> InventoryService:
    return InventoryService(engine)


def checks_together(monkeypatch: pytest.MonkeyPatch, attempts: int) -> None:
    """Force the retry race: every attempt reads "not locked yet" before any attempt locks.

    That is what happens when Temporal retries a lock activity whose first attempt timed out but is
    still running. The schedule is forced, the service's own code runs unchanged.
    """
    original = InventoryService._earlier_lock
    barrier = threading.Barrier(attempts)
    checked = threading.local()

    def earlier_lock_then_wait(self: InventoryService, order_id: str, generation: int) -> StockLock | None:
        result = original(self, order_id, generation)
        if not getattr(checked, "once", False):
            checked.once = True
            barrier.wait(timeout=30)
        return result

    monkeypatch.setattr(InventoryService, "_earlier_lock", earlier_lock_then_wait)


# -------------------------------------------------------------- concurrency
def test_fifty_concurrent_orders_for_ten_units_lock_exactly_ten(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    orders = [f"ord_{i:02d}" for i in range(50)]

    results = no_errors(run_together(lambda o: inventory.lock_order(o, [line("MUG-BLUE")]), orders))

    winners = {o for o, r in zip(orders, results, strict=True) if r.locked}
    assert len(winners) == 10
    assert {r.warehouse for r in results if r.locked} == {WH}
    for result in results:
        if not result.locked:
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

    results = no_errors(run_together(lambda o: inventory.lock_order(o, orders[o]), list(orders)))
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

    first = inventory.lock_order("ord_1", lines)
    again = inventory.lock_order("ord_1", lines)

    assert first == again == StockLock(locked=True, warehouse=WH)
    assert level(inventory, "MUG-BLUE").locked == 2
    assert len(moves(engine, "ord_1")) == 1


def test_concurrent_attempts_of_the_same_lock_lock_once(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    inventory.set_on_hand(WH, "TEE-L", 10)
    lines = [line("MUG-BLUE", 2), line("TEE-L", 1)]
    checks_together(monkeypatch, 2)

    results = no_errors(run_together(lambda _: inventory.lock_order("ord_1", lines), [1, 2]))

    assert results == [StockLock(locked=True, warehouse=WH)] * 2
    assert (level(inventory, "MUG-BLUE").locked, level(inventory, "TEE-L").locked) == (2, 1)
    assert len(moves(engine, "ord_1", "lock")) == 2


def test_a_concurrent_retry_of_a_lock_that_took_the_last_units_still_reports_locked(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 2)
    checks_together(monkeypatch, 2)

    results = no_errors(run_together(lambda _: inventory.lock_order("ord_1", [line("MUG-BLUE", 2)]), [1, 2]))

    assert results == [StockLock(locked=True, warehouse=WH)] * 2
    assert level(inventory, "MUG-BLUE").locked == 2


def test_a_concurrent_retry_never_locks_the_order_in_a_second_warehouse(
    engine: Engine, inventory: InventoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory.set_on_hand("WH-1", "MUG-BLUE", 1)
    inventory.set_on_hand("WH-2", "MUG-BLUE", 5)
    checks_together(monkeypatch, 2)

    results = no_errors(run_together(lambda _: inventory.lock_order("ord_1", [line("MUG-BLUE", 1)]), [1, 2]))

    held = level(inventory, "MUG-BLUE", "WH-1").locked + level(inventory, "MUG-BLUE", "WH-2").locked
    assert held == 1
    assert results[0].locked
    assert results[0] == results[1]


# -------------------------------------------------------------- out of stock
def test_out_of_stock_names_the_sku_and_locks_nothing(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 3)

    result = inventory.lock_order("ord_1", [line("MUG-BLUE", 5)])

    assert result == StockLock(
        locked=False, shortages=[StockShortage(sku="MUG-BLUE", requested=5, available=3)]
    )
    assert level(inventory, "MUG-BLUE").locked == 0
    assert moves(engine) == []


def test_one_short_line_of_several_locks_none_of_them(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand(WH, "CABLE-A", 10)
    inventory.set_on_hand(WH, "DOCK-Z", 1)
    inventory.set_on_hand(WH, "MUG-BLUE", 5)

    result = inventory.lock_order(
        "ord_1", [line("CABLE-A", 2), line("DOCK-Z", 3), line("MUG-BLUE", 1), line("NEVER-STOCKED", 1)]
    )

    assert not result.locked
    assert result.warehouse is None
    assert result.shortages == [
        StockShortage(sku="DOCK-Z", requested=3, available=1),
        StockShortage(sku="NEVER-STOCKED", requested=1, available=0),
    ]
    assert [level(inventory, s).locked for s in ("CABLE-A", "DOCK-Z", "MUG-BLUE")] == [0, 0, 0]
    assert moves(engine) == []


def test_lines_spread_over_warehouses_are_not_locked_piecemeal(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-1", "CABLE-A", 10)
    inventory.set_on_hand("WH-2", "DOCK-Z", 10)

    result = inventory.lock_order("ord_1", [line("CABLE-A"), line("DOCK-Z")])

    assert not result.locked
    assert result.shortages == []  # each line exists somewhere; no single warehouse has both
    assert level(inventory, "CABLE-A", "WH-1").locked == level(inventory, "DOCK-Z", "WH-2").locked == 0
    assert moves(engine) == []


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

    result = inventory.lock_order("ord_1", [line("MUG-BLUE", 2), line("TEE-L", 2)])

    assert result == StockLock(locked=True, warehouse="WH-C")
    assert (level(inventory, "MUG-BLUE", "WH-C").locked, level(inventory, "TEE-L", "WH-C").locked) == (2, 2)
    for warehouse, sku in [("WH-A", "MUG-BLUE"), ("WH-B", "MUG-BLUE"), ("WH-B", "TEE-L"), ("WH-D", "TEE-L")]:
        assert level(inventory, sku, warehouse).locked == 0
    assert {m.warehouse for m in moves(engine)} == {"WH-C"}


def test_release_gives_back_exactly_what_was_locked_once(engine: Engine, inventory: InventoryService) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 5)
    inventory.set_on_hand(WH, "TEE-L", 5)
    inventory.lock_order("ord_other", [line("MUG-BLUE", 1)])
    inventory.lock_order("ord_1", [line("MUG-BLUE", 2), line("TEE-L", 3)])

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
    inventory.lock_order("ord_1", [line("MUG-BLUE", 2), line("TEE-L", 3)])

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
    inventory.lock_order("ord_big", [line("MUG-BLUE", 6)])

    assert inventory.release_order("ord_big") == 0
    assert inventory.release_order("ord_unknown") == 0
    assert level(inventory, "MUG-BLUE").locked == 0


# -------------------------------------------------------------- counted stock
def test_set_on_hand_creates_then_updates(engine: Engine, inventory: InventoryService) -> None:
    assert inventory.get(WH, "MUG-BLUE") is None

    created = inventory.set_on_hand(WH, "MUG-BLUE", 12)
    assert created == StockLevel(warehouse=WH, sku="MUG-BLUE", on_hand=12, locked=0, reserved=0, available=12)
    assert inventory.get(WH, "MUG-BLUE") == created

    inventory.lock_order("ord_1", [line("MUG-BLUE", 4)])
    updated = inventory.set_on_hand(WH, "MUG-BLUE", 20)
    assert (updated.on_hand, updated.locked, updated.available) == (20, 4, 16)
    assert inventory.get(WH, "MUG-BLUE") == updated
    assert inventory.set_on_hand(WH, "MUG-BLUE", 4).available == 0  # down to exactly what is locked


def test_counting_less_than_is_locked_is_refused_and_changes_nothing(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand(WH, "MUG-BLUE", 10)
    inventory.lock_order("ord_1", [line("MUG-BLUE", 7)])

    with pytest.raises(StockConflict, match=r"\b7 locked\b"):
        inventory.set_on_hand(WH, "MUG-BLUE", 6)

    stock = level(inventory, "MUG-BLUE")
    assert (stock.on_hand, stock.locked, stock.available) == (10, 7, 3)


# -------------------------------------------------------------- moving a lock (reassign-warehouse)
def test_relock_moves_every_line_to_the_new_warehouse_and_frees_the_old(
    engine: Engine, inventory: InventoryService
) -> None:
    for warehouse in ("WH-1", "WH-2"):
        inventory.set_on_hand(warehouse, "MUG-BLUE", 5)
        inventory.set_on_hand(warehouse, "TEE-L", 5)
    lines = [line("MUG-BLUE", 2), line("TEE-L", 3)]
    assert inventory.lock_order("ord_1", lines).warehouse == "WH-1"

    moved = inventory.relock_order("ord_1", lines, "WH-2", generation=1)
    again = inventory.relock_order("ord_1", lines, "WH-2", generation=1)

    assert moved == again == StockLock(locked=True, warehouse="WH-2")
    assert (level(inventory, "MUG-BLUE", "WH-1").locked, level(inventory, "TEE-L", "WH-1").locked) == (0, 0)
    assert (level(inventory, "MUG-BLUE", "WH-2").locked, level(inventory, "TEE-L", "WH-2").locked) == (2, 3)
    assert inventory.ship_order("ord_1", "WH-1") == 0
    assert inventory.ship_order("ord_1", "WH-2") == 5


def test_relock_to_a_warehouse_that_cannot_fill_every_line_changes_nothing(
    engine: Engine, inventory: InventoryService
) -> None:
    inventory.set_on_hand("WH-1", "MUG-BLUE", 5)
    inventory.set_on_hand("WH-1", "TEE-L", 5)
    inventory.set_on_hand("WH-2", "MUG-BLUE", 5)
    inventory.set_on_hand("WH-2", "TEE-L", 1)
    lines = [line("MUG-BLUE", 2), line("TEE-L", 3)]
    inventory.lock_order("ord_1", lines)

    refused = inventory.relock_order("ord_1", lines, "WH-2", generation=1)

    assert not refused.locked
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
    inventory.lock_order("ord_1", lines, warehouse="WH-1")
    inventory.relock_order("ord_1", lines, "WH-2", generation=1)
    back = inventory.relock_order("ord_1", lines, "WH-1", generation=2)
    assert back.warehouse == "WH-1"
    assert (level(inventory, "MUG-BLUE", "WH-1").locked, level(inventory, "MUG-BLUE", "WH-2").locked) == (
        2,
        0,
    )
    assert inventory.release_order("ord_1") == 2
