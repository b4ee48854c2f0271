"""Warehouses: where they are, what they ship where at what cost, and stock counts as CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import NamedTuple

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.allocation import DEFAULT_RULES, AllocationRule, ShippingOption, WarehouseInfo
from domain.identifiers import MAX_STOCK_COUNT, SKU_MAX_LENGTH, WAREHOUSE_CODE_MAX_LENGTH, sku_key
from domain.regions import Region
from domain.stock import StockRow
from services.db import transaction
from services.tables import Stock, Warehouse, utcnow

STOCK_CSV_COLUMNS = ("warehouse", "sku", "on_hand", "locked", "reserved", "available", "safety_stock")
# What a spreadsheet takes for the start of a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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

    def codes(self) -> set[str]:
        """The codes of every registered warehouse."""
        with Session(self._engine) as session:
            return set(session.exec(select(Warehouse.code)).all())

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
                        spreadsheet_safe(row.warehouse),
                        spreadsheet_safe(row.sku),
                        row.on_hand,
                        row.locked,
                        row.reserved,
                        available,
                        row.safety_stock,
                    ]
                )
        return out.getvalue()


def spreadsheet_safe(cell: str) -> str:
    """A text cell a spreadsheet shows as text: one starting with = + - @, tab or CR gets a leading
    single quote (OWASP, CSV injection), so "=HYPERLINK(...)" is not run as a formula. Today's codes
    cannot start so; rows written before the patterns were enforced on import still can."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


class CsvRow(NamedTuple):
    """A validated row of a stock CSV and the line it came from (for messages)."""

    line: int
    warehouse: str
    sku: str
    on_hand: int
    safety_stock: int | None


def parse_stock_csv(text: str) -> list[CsvRow]:
    """Rows of a CSV with at least warehouse, sku and on_hand (safety_stock optional), each checked
    exactly as PUT /inventory checks its input (domain.stock.StockRow).

    Extra columns (an export's locked, reserved, available) are ignored, so an export can be edited
    and imported back. The first problem is reported with its line and column before anything is
    imported; the same (warehouse, SKU) twice is refused, as it would leave the count ambiguous.
    """
    if "\x00" in text:
        raise BadCsv("the file contains NUL characters; is it really a CSV text file?")
    try:
        return _parse_rows(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    except csv.Error as exc:
        raise BadCsv(f"not a readable CSV: {exc}") from None


def _parse_rows(reader: csv.DictReader[str]) -> list[CsvRow]:
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = {"warehouse", "sku", "on_hand"} - set(header)
    if missing:
        raise BadCsv(f"header: missing column(s) {', '.join(sorted(missing))}")
    reader.fieldnames = header
    rows: list[CsvRow] = []
    first_line: dict[tuple[str, str], int] = {}
    spelling: dict[str, tuple[str, int]] = {}  # sku_key -> the SKU as first written, and its line
    for record in reader:
        number = reader.line_num  # the physical line, also after blank lines
        if record.get("on_hand") is None:  # the row is shorter than the header
            raise BadCsv(f"line {number}, column on_hand: missing; the row has fewer cells than the header")
        cells = {name: (record.get(name) or "").strip() for name in _COLUMNS}
        if not cells["warehouse"] or not cells["sku"]:
            raise BadCsv(f"line {number}: warehouse and sku are required")
        try:
            row = StockRow.model_validate({**cells, "safety_stock": cells["safety_stock"] or None})
        except ValidationError as exc:
            error = exc.errors()[0]
            column = str(error["loc"][0]) if error["loc"] else "row"
            raise BadCsv(f"line {number}, column {column}: {_say(column, error)}") from None
        if (earlier := first_line.setdefault((row.warehouse, row.sku), number)) != number:
            raise BadCsv(
                f"line {number}: {row.warehouse} {row.sku} is also on line {earlier}; keep one of the two"
            )
        spelled, line = spelling.setdefault(sku_key(row.sku), (row.sku, number))
        if spelled != row.sku:
            raise BadCsv(
                f"line {number}, column sku: {row.sku!r} and {spelled!r} (line {line}) differ only in "
                "case, which makes them one item; write the SKU one way"
            )
        rows.append(CsvRow(number, row.warehouse, row.sku, row.on_hand, row.safety_stock))
    return rows


_COLUMNS = ("warehouse", "sku", "on_hand", "safety_stock")
_RULES = {
    "warehouse": (
        f"a warehouse code is 1-{WAREHOUSE_CODE_MAX_LENGTH} letters, digits, _ or -, starting with a "
        "letter or digit"
    ),
    "sku": (
        f"a SKU is 1-{SKU_MAX_LENGTH} letters, digits, . _ / or -, starting with a letter or digit "
        "(a leading = + - @ would make a spreadsheet run it as a formula)"
    ),
}


def _say(column: str, error: ErrorDetails) -> str:
    """A pydantic error as a person reads it, with what the column takes."""
    value = error.get("input")
    if error["type"] == "string_pattern_mismatch" and column in _RULES:
        return f"{value!r} is not allowed: {_RULES[column]}"
    if error["type"] == "greater_than_equal":
        return f"{value} cannot be negative"
    if error["type"] == "less_than_equal":
        return f"{value} is more than {MAX_STOCK_COUNT:,} (the most a stock row counts)"
    if error["type"] == "value_error":
        return f"{value!r} {str(error['msg']).removeprefix('Value error, ')}"
    return str(error["msg"])
