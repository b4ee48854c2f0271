"""Contention: M orders racing for K units of one SKU on PostgreSQL; nothing may be oversold.

    python -m bench.contention [--orders 200] [--units 50] [--threads 32]

A throwaway PostgreSQL database gets three warehouses (WarehouseService; Frankfurt, Los Angeles,
Shenzhen, each shipping everywhere) holding `--units` units of one SKU between them (40/40/20 %).
Then `--orders` orders of one unit each, to Germany, the US and Japan in turn, call
InventoryService.lock_order, the service behind the lock_stock activity:

1. serial (baseline): one after another from one thread;
2. concurrent: from `--threads` threads released together by a barrier (32 is the worker's activity
   thread pool), all on the same stock rows.

Each run uses its own SKU, so both start from the same full stock. How to read it: `units locked`
must equal the stock when there are more orders than units, `units oversold` must be 0 (checked
three ways: what lock_order promised its callers, the stock rows' `locked`, and the ledger), and
`refused` orders got a clean "short" answer, not an error. `ratio` is orders per second against the
serial run: above 1x the row locks let parallel orders through, below 1x they only queue.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from bench import harness
from domain.allocation import ShippingOption, WarehouseInfo
from domain.effects import StockLock
from domain.models import OrderLine
from domain.regions import Region, region_of
from services.db import create_schema, make_engine
from services.inventory import InventoryService
from services.tables import Stock, StockMove
from services.warehouses import WarehouseService

DESTINATIONS = ("DE", "US", "JP")
SHARES = {"WH-FRA": 0.4, "WH-LA": 0.4, "WH-SZ": 0.2}
EVERYWHERE = {region: ShippingOption(cost=Decimal("5.00"), days=3) for region in Region}
WAREHOUSES = [
    WarehouseInfo(code=code, country=country, region=region_of(country), shipping=EVERYWHERE)
    for code, country in (("WH-FRA", "DE"), ("WH-LA", "US"), ("WH-SZ", "CN"))
]


@dataclass
class Outcome:
    name: str
    threads: int
    units: int
    results: list[StockLock | Exception]
    latencies: list[float]
    elapsed: float
    stock_locked: int  # sum of Stock.locked for the SKU afterwards
    ledger_locked: int  # sum of the SKU's lock moves in the ledger

    @property
    def locked_orders(self) -> int:
        return sum(isinstance(r, StockLock) and r.locked for r in self.results)

    @property
    def refused(self) -> int:
        return sum(isinstance(r, StockLock) and not r.locked for r in self.results)

    @property
    def errors(self) -> list[Exception]:
        return [r for r in self.results if isinstance(r, Exception)]

    @property
    def promised(self) -> int:
        """Units lock_order told its callers it locked."""
        return sum(
            item.quantity
            for r in self.results
            if isinstance(r, StockLock) and r.locked
            for part in r.parts
            for item in part.lines
        )

    @property
    def oversold(self) -> int:
        most = max(self.promised, self.stock_locked, self.ledger_locked)
        return max(0, most - self.units)

    @property
    def consistent(self) -> bool:
        return self.promised == self.stock_locked == self.ledger_locked and not self.oversold


def stock_sku(inventory: InventoryService, sku: str, units: int) -> None:
    left = units
    for number, (code, share) in enumerate(SHARES.items()):
        held = left if number == len(SHARES) - 1 else round(units * share)
        inventory.set_on_hand(code, sku, held)
        left -= held


def locked_totals(engine: Engine, sku: str) -> tuple[int, int]:
    with Session(engine) as session:
        stock = session.exec(select(func.sum(Stock.locked)).where(Stock.sku == sku)).one()
        ledger = session.exec(
            select(func.sum(StockMove.quantity)).where(StockMove.sku == sku, col(StockMove.kind) == "lock")
        ).one()
    return int(stock or 0), int(ledger or 0)


def race(
    lock: Callable[[int], StockLock], orders: int, threads: int
) -> tuple[list[StockLock | Exception], list[float], float]:
    """lock(i) for every order from `threads` threads released together: (results, seconds each, elapsed)."""
    barrier = threading.Barrier(threads + 1)
    results: list[StockLock | Exception | None] = [None] * orders
    latencies: list[float] = [0.0] * orders

    def worker(first: int) -> None:
        barrier.wait(timeout=60)
        for number in range(first, orders, threads):
            began = time.perf_counter()
            try:
                results[number] = lock(number)
            except Exception as exc:  # reported in the table: a benchmark counts failures, it does not stop
                results[number] = exc
            latencies[number] = time.perf_counter() - began

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(worker, first) for first in range(threads)]
        barrier.wait(timeout=60)
        watch = harness.Stopwatch()
        for future in futures:
            future.result()
        elapsed = watch.elapsed
    return [r for r in results if r is not None], latencies, elapsed


def run(
    engine: Engine, inventory: InventoryService, name: str, orders: int, units: int, threads: int
) -> Outcome:
    sku = f"MUG-{name.upper()}"
    stock_sku(inventory, sku, units)

    def lock(number: int) -> StockLock:
        line = OrderLine(sku=sku, quantity=1, unit_price=Decimal("9.90"))
        destination = DESTINATIONS[number % len(DESTINATIONS)]
        return inventory.lock_order(f"ord_{name}_{number:05d}", [line], destination)

    results, latencies, elapsed = race(lock, orders, threads)
    stock_locked, ledger_locked = locked_totals(engine, sku)
    return Outcome(name, threads, units, results, latencies, elapsed, stock_locked, ledger_locked)


async def main() -> int:
    parser = argparse.ArgumentParser(description="Concurrent stock locks on PostgreSQL: none oversold.")
    parser.add_argument("--orders", type=int, default=200, help="orders of one unit each (default 200)")
    parser.add_argument("--units", type=int, default=50, help="units in stock over 3 warehouses (default 50)")
    parser.add_argument("--threads", type=int, default=32, help="concurrent callers (default 32)")
    args = parser.parse_args()
    harness.quiet_logs()

    with harness.throwaway_postgres("contention") as url:
        engine = make_engine(url)
        try:
            create_schema(engine)
            registry = WarehouseService(engine)
            for warehouse in WAREHOUSES:
                registry.upsert(warehouse)
            inventory = InventoryService(engine, registry)
            outcomes = [
                run(engine, inventory, "serial", args.orders, args.units, threads=1),
                run(engine, inventory, "concurrent", args.orders, args.units, threads=args.threads),
            ]
        finally:
            engine.dispose()

    serial_rate = args.orders / outcomes[0].elapsed
    harness.print_table(
        f"Contention: {args.orders} orders of 1 unit for {args.units} units over 3 warehouses, "
        "PostgreSQL; baseline = serial",
        [
            "run",
            "threads",
            "units in stock",
            "orders locked",
            "units locked",
            "units oversold",
            "refused (short)",
            "errors",
            "elapsed s",
            "orders/s",
            "ratio",
            "p50 ms",
            "p99 ms",
        ],
        [
            [
                o.name,
                o.threads,
                o.units,
                o.locked_orders,
                o.stock_locked,
                o.oversold,
                o.refused,
                len(o.errors),
                o.elapsed,
                args.orders / o.elapsed,
                harness.ratio(args.orders / o.elapsed, serial_rate),
                harness.percentile(o.latencies, 50) * 1000,
                harness.percentile(o.latencies, 99) * 1000,
            ]
            for o in outcomes
        ],
    )
    failed = False
    for o in outcomes:
        if o.errors:
            print(f"{o.name}: {len(o.errors)} call(s) raised, first: {o.errors[0]!r}")
        if not o.consistent:
            failed = True
            print(
                f"{o.name}: INCONSISTENT: promised {o.promised}, stock rows {o.stock_locked}, "
                f"ledger {o.ledger_locked}, stock {o.units}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    harness.run(main)
