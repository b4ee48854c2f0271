"""CSV stock import: the bounded-batch import against the row-by-row one it replaced, on PostgreSQL.

    python -m bench.csv_import [--rows 60000]

A throwaway PostgreSQL database and one registered warehouse. Each way imports `--rows` new SKUs,
then the same file again with every count changed (updates), each in one transaction:

1. row by row (the old InventoryService.import_counts): a session.get per row, an ORM object each,
   one low-stock check per row; its lock query was one IN list over every SKU, so it also failed past
   65 535 SKUs (PostgreSQL's bind-parameter limit) and cannot be run at or above that size;
2. batched (today's): reads and checks IMPORT_BATCH rows at a time, then one INSERT and one UPDATE
   per batch.

`ratio` is the old way's seconds over the new way's: how many times faster the import is now.
"""

from __future__ import annotations

import argparse

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bench.harness import Stopwatch, print_table, quiet_logs, ratio, throwaway_postgres
from services.db import create_schema, make_engine, transaction
from services.inventory import InventoryService, StockConflict
from services.tables import LowStockEvent, Stock, utcnow
from services.warehouses import CsvRow, WarehouseService, parse_stock_csv, unregistered


def stock_csv(rows: int, on_hand: int, warehouse: str) -> str:
    return "warehouse,sku,on_hand\n" + "".join(f"{warehouse},SKU-{i:06d},{on_hand}\n" for i in range(rows))


def row_by_row(engine: Engine, rows: list[CsvRow]) -> None:
    """The import as it was before the batches (services/inventory.py at a5ab6eb), checks included."""
    with transaction(engine) as session:
        skus = sorted({row.sku for row in rows})
        session.exec(select(Stock.warehouse).where(col(Stock.sku).in_(skus)).with_for_update()).all()
        for row in rows:
            stock = session.get(Stock, (row.warehouse, row.sku), populate_existing=True)
            if stock is None:
                session.add(Stock(warehouse=row.warehouse, sku=row.sku, on_hand=row.on_hand, safety_stock=0))
                continue
            if row.on_hand < stock.locked + stock.reserved:
                raise StockConflict(f"line {row.line}")
            stock.on_hand, stock.updated_at = row.on_hand, utcnow()
        session.flush()
        for row in rows:  # _watch_safety_stock: a row read and an event query per row
            stock = session.get(Stock, (row.warehouse, row.sku), populate_existing=True)
            assert stock is not None
            session.exec(
                select(LowStockEvent).where(
                    LowStockEvent.warehouse == row.warehouse,
                    LowStockEvent.sku == row.sku,
                    col(LowStockEvent.resolved_at).is_(None),
                )
            ).first()


def measure(url: str, rows: int, old: bool) -> tuple[float, float]:
    engine = make_engine(url)
    create_schema(engine)
    warehouse = "WH-OLD" if old else "WH-NEW"
    warehouses = WarehouseService(engine)
    warehouses.upsert(unregistered(warehouse))
    inventory = InventoryService(engine, warehouses)
    seconds = []
    for on_hand in (5, 7):  # new rows, then every row updated
        parsed = parse_stock_csv(stock_csv(rows, on_hand, warehouse))
        watch = Stopwatch()
        if old:
            row_by_row(engine, parsed)
        else:
            inventory.import_counts(parsed)
        seconds.append(watch.elapsed)
    with Session(engine) as session:
        assert len(session.exec(select(Stock.sku).where(Stock.warehouse == warehouse)).all()) == rows
    engine.dispose()
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    args = parser.parse_args()
    quiet_logs()
    with throwaway_postgres("csv_old") as old_url, throwaway_postgres("csv_new") as new_url:
        old = measure(old_url, args.rows, old=True)
        new = measure(new_url, args.rows, old=False)
    print_table(
        f"CSV import of {args.rows:,} rows on PostgreSQL, one transaction (seconds)",
        ["way", "new rows", "updated rows", "ratio (new rows)", "ratio (updated)"],
        [
            ["row by row (before)", old[0], old[1], "1.00x", "1.00x"],
            ["batched (now)", new[0], new[1], ratio(old[0], new[0]), ratio(old[1], new[1])],
        ],
    )


if __name__ == "__main__":
    main()
