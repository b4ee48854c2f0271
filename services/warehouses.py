"""Warehouses: where they are, what they ship where at what cost, and stock counts as CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.allocation import DEFAULT_RULES, AllocationRule, ShippingOption, WarehouseInfo
from domain.regions import Region
from services.db import transaction
from services.tables import Stock, Warehouse, utcnow

STOCK_CSV_COLUMNS = ("warehouse", "sku", "on_hand", "locked", "reserved", "available", "safety_stock")


class BadCsv(ValueError):
    """A stock CSV that cannot be imported; the message names the row and column."""


def _info(row: Warehouse) -> WarehouseInfo:
    return WarehouseInfo(
        code=row.code,
        country=row.country or None,
        region=Region(row.region) if row.region else None,
        daily_capacity=row.daily_capacity,
        shipping={
            Region(region): ShippingOption(cost=Decimal(str(o["cost"])), days=int(o["days"]))
            for region, o in row.shipping.items()
        },
    )


def unregistered(code: str) -> WarehouseInfo:
    """Stock kept in a warehouse nobody described yet: it may ship anywhere, with no cost data."""
    return WarehouseInfo(
        code=code,
        country=None,
        region=None,
        daily_capacity=None,
        shipping={region: ShippingOption(cost=Decimal(0), days=0) for region in Region},
    )


class WarehouseService:
    def __init__(self, engine: Engine, rules: tuple[AllocationRule, ...] = DEFAULT_RULES) -> None:
        self._engine = engine
        self.rules = rules

    def upsert(self, info: WarehouseInfo, name: str | None = None) -> WarehouseInfo:
        shipping = {
            region.value: {"cost": str(option.cost), "days": option.days}
            for region, option in info.shipping.items()
        }
        with transaction(self._engine) as session:
            row = session.get(Warehouse, info.code)
            if row is None:
                row = Warehouse(code=info.code, name=name or info.code, country="", region="", shipping={})
                session.add(row)
            row.name = name or row.name
            row.country = info.country or ""
            row.region = info.region.value if info.region else ""
            row.daily_capacity = info.daily_capacity
            row.shipping = shipping
            row.updated_at = utcnow()
        return info

    def get(self, code: str) -> WarehouseInfo | None:
        with Session(self._engine) as session:
            row = session.get(Warehouse, code)
            return _info(row) if row else None

    def all(self, session: Session | None = None) -> list[WarehouseInfo]:
        """Every registered warehouse; pass the caller's session to read inside its transaction."""
        if session is None:
            with Session(self._engine) as own:
                return self.all(own)
        return [_info(row) for row in session.exec(select(Warehouse).order_by(col(Warehouse.code))).all()]

    def infos(self, known: list[str], session: Session | None = None) -> list[WarehouseInfo]:
        """Every registered warehouse, plus any that only appear in stock rows (`known`)."""
        registered = {info.code: info for info in self.all(session)}
        for code in known:
            registered.setdefault(code, unregistered(code))
        return [registered[code] for code in sorted(registered)]

    # ------------------------------------------------------------------ CSV
    def export_stock_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STOCK_CSV_COLUMNS)
        with Session(self._engine) as session:
            for row in session.exec(select(Stock).order_by(col(Stock.warehouse), col(Stock.sku))).all():
                available = row.on_hand - row.locked - row.reserved
                writer.writerow(
                    [
                        row.warehouse,
                        row.sku,
                        row.on_hand,
                        row.locked,
                        row.reserved,
                        available,
                        row.safety_stock,
                    ]
                )
        return out.getvalue()


def parse_stock_csv(text: str) -> list[tuple[str, str, int, int | None]]:
    """Rows of (warehouse, sku, on_hand, safety_stock) from a CSV with at least warehouse, sku, on_hand.

    Extra columns (an export's locked, reserved, available) are ignored, so an export can be edited
    and imported back. Every problem is reported with its line number before anything is imported.
    """
    if "\x00" in text:
        raise BadCsv("the file contains NUL characters; is it really a CSV text file?")
    try:
        return _parse_rows(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise BadCsv(f"not a readable CSV: {exc}") from None


def _parse_rows(reader: csv.DictReader[str]) -> list[tuple[str, str, int, int | None]]:
    missing = {"warehouse", "sku", "on_hand"} - set(reader.fieldnames or ())
    if missing:
        raise BadCsv(f"header: missing column(s) {', '.join(sorted(missing))}")
    rows: list[tuple[str, str, int, int | None]] = []
    for record in reader:
        number = reader.line_num  # the physical line, also after blank lines
        warehouse, sku = (record.get("warehouse") or "").strip(), (record.get("sku") or "").strip()
        if not warehouse or not sku:
            raise BadCsv(f"line {number}: warehouse and sku are required")
        try:
            on_hand = int(record["on_hand"])
            raw_safety = (record.get("safety_stock") or "").strip()
            safety = int(raw_safety) if raw_safety else None
        except (TypeError, ValueError):  # TypeError: the row is shorter than the header
            raise BadCsv(f"line {number}: on_hand and safety_stock must be whole numbers") from None
        if on_hand < 0 or (safety is not None and safety < 0):
            raise BadCsv(f"line {number}: on_hand and safety_stock cannot be negative")
        rows.append((warehouse, sku, on_hand, safety))
    return rows
