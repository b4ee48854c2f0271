"""Stock per (warehouse, SKU): set levels, lock an order's lines atomically, release, ship.

Every move is a conditional UPDATE guarded in SQL (never read-then-write) plus a ledger row whose
unique key (order_id, line_no, warehouse, kind) makes a retried move a no-op. The CHECK constraint
on_hand >= locked + reserved is the last line of defence against overselling.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.effects import StockLevel, StockLock, StockShortage
from domain.models import OrderLine
from services.db import transaction
from services.tables import Stock, StockMove, utcnow


class StockConflict(Exception):
    """A stock change that would break on_hand >= locked + reserved."""


def _level(row: Stock) -> StockLevel:
    return StockLevel(
        warehouse=row.warehouse,
        sku=row.sku,
        on_hand=row.on_hand,
        locked=row.locked,
        reserved=row.reserved,
        available=row.on_hand - row.locked - row.reserved,
    )


class InventoryService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, warehouse: str, sku: str) -> StockLevel | None:
        with Session(self._engine) as session:
            row = session.get(Stock, (warehouse, sku))
            return _level(row) if row else None

    def set_on_hand(self, warehouse: str, sku: str, on_hand: int) -> StockLevel:
        """Set the counted quantity; refused when it would leave less than is locked or reserved."""
        with transaction(self._engine) as session:
            result = session.execute(
                update(Stock)
                .where(col(Stock.warehouse) == warehouse, col(Stock.sku) == sku)
                .where(col(Stock.locked) + col(Stock.reserved) <= on_hand)
                .values(on_hand=on_hand, updated_at=utcnow())
            )
            row = session.get(Stock, (warehouse, sku), populate_existing=True)
            if row is None:
                row = Stock(warehouse=warehouse, sku=sku, on_hand=on_hand)
                session.add(row)
            elif result.rowcount == 0:  # type: ignore[attr-defined]
                raise StockConflict(
                    f"on_hand {on_hand} is below what orders hold: {row.locked} locked and "
                    f"{row.reserved} reserved in {warehouse} for {sku}"
                )
            session.flush()
            return _level(row)

    def lock_order(self, order_id: str, lines: list[OrderLine]) -> StockLock:
        """Lock every line in the first warehouse (by code) that has all of them, or nothing."""
        earlier = self._earlier_lock(order_id)
        if earlier:
            return earlier
        candidates = self._warehouses_with_all(lines)
        for warehouse in candidates:
            try:
                if self._try_lock(order_id, warehouse, lines):
                    return StockLock(locked=True, warehouse=warehouse)
            except IntegrityError:
                # A concurrent run of this same lock wrote the ledger first: use its result.
                earlier = self._earlier_lock(order_id)
                if earlier:
                    return earlier
                raise
        return StockLock(locked=False, shortages=self._shortages(lines))

    def release_order(self, order_id: str) -> int:
        """Give back whatever the order still holds locked; returns the units released."""
        released = 0
        with transaction(self._engine) as session:
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
            done = {(m.line_no, m.warehouse) for m in moves if m.kind in ("release", "ship")}
            for move in sorted(moves, key=lambda m: (m.warehouse, m.sku)):
                if move.kind != "lock" or (move.line_no, move.warehouse) in done:
                    continue
                session.execute(
                    update(Stock)
                    .where(col(Stock.warehouse) == move.warehouse, col(Stock.sku) == move.sku)
                    .values(locked=col(Stock.locked) - move.quantity, updated_at=utcnow())
                )
                session.add(_move(move, "release"))
                released += move.quantity
        return released

    def ship_order(self, order_id: str, warehouse: str) -> int:
        """The parcel left: locked units leave on_hand too. Returns the units shipped."""
        shipped = 0
        with transaction(self._engine) as session:
            moves = session.exec(
                select(StockMove).where(StockMove.order_id == order_id, StockMove.warehouse == warehouse)
            ).all()
            done = {m.line_no for m in moves if m.kind in ("release", "ship")}
            for move in sorted(moves, key=lambda m: m.sku):
                if move.kind != "lock" or move.line_no in done:
                    continue
                session.execute(
                    update(Stock)
                    .where(col(Stock.warehouse) == warehouse, col(Stock.sku) == move.sku)
                    .values(
                        on_hand=col(Stock.on_hand) - move.quantity,
                        locked=col(Stock.locked) - move.quantity,
                        updated_at=utcnow(),
                    )
                )
                session.add(_move(move, "ship"))
                shipped += move.quantity
        return shipped

    def _earlier_lock(self, order_id: str) -> StockLock | None:
        with Session(self._engine) as session:
            move = session.exec(
                select(StockMove).where(StockMove.order_id == order_id, StockMove.kind == "lock")
            ).first()
            return StockLock(locked=True, warehouse=move.warehouse) if move else None

    def _warehouses_with_all(self, lines: list[OrderLine]) -> list[str]:
        """Warehouses that look able to fill every line now; the locking UPDATE has the last word."""
        need = {line.sku: line.quantity for line in lines}
        with Session(self._engine) as session:
            rows = session.exec(select(Stock).where(col(Stock.sku).in_(need))).all()
        fillable: dict[str, int] = {}
        for row in rows:
            if row.on_hand - row.locked - row.reserved >= need[row.sku]:
                fillable[row.warehouse] = fillable.get(row.warehouse, 0) + 1
        return sorted(w for w, count in fillable.items() if count == len(need))

    def _try_lock(self, order_id: str, warehouse: str, lines: list[OrderLine]) -> bool:
        with transaction(self._engine) as session:
            numbered = sorted(enumerate(lines), key=lambda item: item[1].sku)  # fixed lock order
            for line_no, line in numbered:
                result = session.execute(
                    update(Stock)
                    .where(col(Stock.warehouse) == warehouse, col(Stock.sku) == line.sku)
                    .where(col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved) >= line.quantity)
                    .values(locked=col(Stock.locked) + line.quantity, updated_at=utcnow())
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    session.rollback()
                    return False
                session.add(
                    StockMove(
                        order_id=order_id,
                        line_no=line_no,
                        warehouse=warehouse,
                        sku=line.sku,
                        kind="lock",
                        quantity=line.quantity,
                    )
                )
            session.flush()
        return True

    def _shortages(self, lines: list[OrderLine]) -> list[StockShortage]:
        with Session(self._engine) as session:
            available = dict(
                session.exec(
                    select(
                        Stock.sku,
                        func.max(col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved)),
                    )
                    .where(col(Stock.sku).in_([line.sku for line in lines]))
                    .group_by(col(Stock.sku))
                ).all()
            )
        # Lines no single warehouse can fill; empty when each line exists somewhere but no one
        # warehouse holds them all (split shipments resolve that case).
        return [
            StockShortage(sku=line.sku, requested=line.quantity, available=available_now)
            for line in lines
            if (available_now := int(available.get(line.sku) or 0)) < line.quantity
        ]


def _move(lock: StockMove, kind: str) -> StockMove:
    return StockMove(
        order_id=lock.order_id,
        line_no=lock.line_no,
        warehouse=lock.warehouse,
        sku=lock.sku,
        kind=kind,
        quantity=lock.quantity,
    )
