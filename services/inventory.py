"""Stock per (warehouse, SKU): set levels, lock an order's lines atomically, move, release, ship.

Every move is a conditional UPDATE guarded in SQL (never read-then-write) plus a ledger row whose
unique key (order_id, line_no, kind, generation) makes a retried move a no-op. The CHECK constraint
on_hand >= locked + reserved is the last line of defence against overselling.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def _outstanding(moves: Sequence[StockMove]) -> list[StockMove]:
    """Lock rows not yet released or shipped, in a fixed (warehouse, sku) order to avoid deadlocks."""
    closed = {(m.line_no, m.generation) for m in moves if m.kind in ("release", "ship")}
    locks = [m for m in moves if m.kind == "lock" and (m.line_no, m.generation) not in closed]
    return sorted(locks, key=lambda m: (m.warehouse, m.sku))


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

    def lock_order(
        self,
        order_id: str,
        lines: list[OrderLine],
        *,
        generation: int = 0,
        warehouse: str | None = None,
    ) -> StockLock:
        """Lock every line in one warehouse (the given one, else the first by code that has them all).

        All or nothing. A retry, even one racing the first attempt, returns the first attempt's lock.
        """
        earlier = self._earlier_lock(order_id, generation)
        if earlier:
            return earlier
        candidates = [warehouse] if warehouse else self._warehouses_with_all(lines)
        for candidate in candidates:
            try:
                if self._try_lock(order_id, candidate, lines, generation):
                    return StockLock(locked=True, warehouse=candidate)
            except IntegrityError:
                break  # a concurrent attempt for this order wrote the ledger first
        # Not locked by us: a racing attempt may have locked it meanwhile; its result stands.
        earlier = self._earlier_lock(order_id, generation)
        if earlier:
            return earlier
        return StockLock(locked=False, shortages=self._shortages(lines, warehouse))

    def relock_order(
        self, order_id: str, lines: list[OrderLine], warehouse: str, generation: int
    ) -> StockLock:
        """Lock `generation` in `warehouse` and release every older lock, in one transaction."""
        earlier = self._earlier_lock(order_id, generation)
        if earlier:
            return earlier
        try:
            with transaction(self._engine) as session:
                if not self._lock_lines(session, order_id, warehouse, lines, generation):
                    session.rollback()
                    return StockLock(locked=False, shortages=self._shortages(lines, warehouse))
                older = session.exec(
                    select(StockMove).where(
                        StockMove.order_id == order_id, col(StockMove.generation) < generation
                    )
                ).all()
                self._close(session, _outstanding(older), "release")
        except IntegrityError:
            pass
        earlier = self._earlier_lock(order_id, generation)
        assert earlier is not None, "relock committed nothing and raised nothing"
        return earlier

    def release_order(self, order_id: str) -> int:
        """Give back whatever the order still holds locked; returns the units released."""
        with transaction(self._engine) as session:
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
            return self._close(session, _outstanding(moves), "release")

    def ship_order(self, order_id: str, warehouse: str) -> int:
        """The parcel left: locked units leave on_hand too. Returns the units shipped."""
        with transaction(self._engine) as session:
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
            held = [m for m in _outstanding(moves) if m.warehouse == warehouse]
            return self._close(session, held, "ship")

    def _close(self, session: Session, locks: list[StockMove], kind: str) -> int:
        """Release or ship lock rows: stock first, then the ledger row that makes it happen once."""
        units = 0
        for lock in locks:
            values = {"locked": col(Stock.locked) - lock.quantity, "updated_at": utcnow()}
            if kind == "ship":
                values["on_hand"] = col(Stock.on_hand) - lock.quantity
            session.execute(
                update(Stock)
                .where(col(Stock.warehouse) == lock.warehouse, col(Stock.sku) == lock.sku)
                .values(**values)
            )
            session.add(
                StockMove(
                    order_id=lock.order_id,
                    line_no=lock.line_no,
                    generation=lock.generation,
                    warehouse=lock.warehouse,
                    sku=lock.sku,
                    kind=kind,
                    quantity=lock.quantity,
                )
            )
            units += lock.quantity
        session.flush()
        return units

    def _earlier_lock(self, order_id: str, generation: int) -> StockLock | None:
        with Session(self._engine) as session:
            move = session.exec(
                select(StockMove).where(
                    StockMove.order_id == order_id,
                    StockMove.kind == "lock",
                    StockMove.generation == generation,
                )
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

    def _try_lock(self, order_id: str, warehouse: str, lines: list[OrderLine], generation: int) -> bool:
        with transaction(self._engine) as session:
            if self._lock_lines(session, order_id, warehouse, lines, generation):
                return True
            session.rollback()
            return False

    def _lock_lines(
        self, session: Session, order_id: str, warehouse: str, lines: list[OrderLine], generation: int
    ) -> bool:
        """Guarded UPDATE per line in SKU order plus its ledger row; False at the first short line."""
        for line_no, line in sorted(enumerate(lines), key=lambda item: item[1].sku):
            result = session.execute(
                update(Stock)
                .where(col(Stock.warehouse) == warehouse, col(Stock.sku) == line.sku)
                .where(col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved) >= line.quantity)
                .values(locked=col(Stock.locked) + line.quantity, updated_at=utcnow())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            session.add(
                StockMove(
                    order_id=order_id,
                    line_no=line_no,
                    generation=generation,
                    warehouse=warehouse,
                    sku=line.sku,
                    kind="lock",
                    quantity=line.quantity,
                )
            )
        session.flush()
        return True

    def _shortages(self, lines: list[OrderLine], warehouse: str | None = None) -> list[StockShortage]:
        """Lines no single warehouse (or the given one) can fill.

        Empty when each line exists somewhere but no one warehouse holds them all.
        """
        query = select(Stock.sku, func.max(col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved)))
        query = query.where(col(Stock.sku).in_([line.sku for line in lines]))
        if warehouse:
            query = query.where(Stock.warehouse == warehouse)
        with Session(self._engine) as session:
            available = dict(session.exec(query.group_by(col(Stock.sku))).all())
        return [
            StockShortage(sku=line.sku, requested=line.quantity, available=available_now)
            for line in lines
            if (available_now := int(available.get(line.sku) or 0)) < line.quantity
        ]
