"""Stock per (warehouse, SKU): counts, soft reservations, allocation-based locks, release, ship.

Every move is a conditional UPDATE guarded in SQL (never read-then-write) plus a ledger row whose
unique key (order_id, line_no, warehouse, kind, generation) makes a retried move a no-op. Which
warehouses an order's generation uses is decided once: the StockAllocation claim is inserted first in
the allocating transaction, so a racing retry conflicts there and reads the winner's plan. The CHECK
constraint on_hand >= locked + reserved is the last line of defence against overselling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, case, func, insert, update
from sqlalchemy import select as sa_select  # sqlmodel's select takes at most four columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.allocation import AllocationPlan, AllocationRule, allocate
from domain.effects import Reservation, StockLevel, StockLock
from domain.identifiers import sku_key
from domain.models import OrderLine
from services.db import transaction
from services.tables import LowStockEvent, Stock, StockAllocation, StockMove, utcnow
from services.warehouses import BadCsv, CsvRow, WarehouseService

# How often an allocation is recomputed when a concurrent order took the stock its plan counted on.
_ALLOCATION_ATTEMPTS = 5
# Rows per statement of a CSV import: (warehouse, sku) pairs are two bind parameters each, far below
# PostgreSQL's 65 535 and SQLite's 32 766.
IMPORT_BATCH = 1_000
_CLOSES = {"lock": ("release", "ship"), "reserve": ("unreserve", "lock_from_reserve")}


class StockConflict(Exception):
    """A stock change that would break on_hand >= locked + reserved."""


class SkuSpelling(StockConflict):
    """A SKU the stock already holds spelled in another case: one item, not two."""


class _Lost(Exception):
    """A guarded update found less stock than the plan read: recompute the plan."""


def _level(row: Stock) -> StockLevel:
    return StockLevel(
        warehouse=row.warehouse,
        sku=row.sku,
        on_hand=row.on_hand,
        locked=row.locked,
        reserved=row.reserved,
        available=row.on_hand - row.locked - row.reserved,
        safety_stock=row.safety_stock,
    )


def _outstanding(moves: Sequence[StockMove], kind: str) -> list[StockMove]:
    """`kind` rows (lock or reserve) not yet closed, in (warehouse, sku) order to avoid deadlocks."""
    closed = {(m.line_no, m.warehouse, m.generation) for m in moves if m.kind in _CLOSES[kind]}
    rows = [m for m in moves if m.kind == kind and (m.line_no, m.warehouse, m.generation) not in closed]
    return sorted(rows, key=lambda m: (m.warehouse, m.sku, m.line_no))


def _lock_rows(session: Session, skus: set[str]) -> None:
    """SELECT ... FOR UPDATE the stock rows of these SKUs in (warehouse, sku) order (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already serialises writers)."""
    if skus:
        query = select(Stock.warehouse).where(col(Stock.sku).in_(sorted(skus)))
        session.exec(query.order_by(col(Stock.warehouse), col(Stock.sku)).with_for_update()).all()


def _utc(moment: datetime | str) -> datetime:
    """SQLite hands timestamps back without their zone (and func.max as text): they are UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _shipped_today(session: Session, now: datetime) -> dict[str, int]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    query = (
        select(StockMove.warehouse, func.count(func.distinct(StockMove.order_id)))
        .where(StockMove.kind == "lock", col(StockMove.created_at) >= midnight)
        .group_by(col(StockMove.warehouse))
    )
    return {warehouse: int(count) for warehouse, count in session.exec(query).all()}


def _move(lock: StockMove, kind: str) -> StockMove:
    return StockMove(
        order_id=lock.order_id,
        line_no=lock.line_no,
        generation=lock.generation,
        warehouse=lock.warehouse,
        sku=lock.sku,
        kind=kind,
        quantity=lock.quantity,
    )


def _lock_batch(session: Session, batch: Sequence[CsvRow]) -> dict[tuple[str, str], Row[Any]]:
    """The stock rows of a batch of an import, locked. Two IN lists rather than a row-value IN, which
    PostgreSQL answers with a scan: ix_stock_sku finds the SKUs, other warehouses' rows are dropped."""
    wanted = {(row.warehouse, row.sku) for row in batch}
    query = (
        sa_select(
            col(Stock.warehouse),
            col(Stock.sku),
            col(Stock.on_hand),
            col(Stock.locked),
            col(Stock.reserved),
            col(Stock.safety_stock),
        )
        .where(col(Stock.sku).in_(sorted({sku for _, sku in wanted})))
        .where(col(Stock.warehouse).in_(sorted({warehouse for warehouse, _ in wanted})))
        .order_by(col(Stock.warehouse), col(Stock.sku))
        .with_for_update()
    )
    return {(r.warehouse, r.sku): r for r in session.execute(query).all() if (r.warehouse, r.sku) in wanted}


def _open_events(session: Session, batch: Sequence[CsvRow]) -> dict[tuple[str, str], int | None]:
    """The open low-stock events of a batch of an import, by (warehouse, sku)."""
    wanted = {(row.warehouse, row.sku) for row in batch}
    query = select(LowStockEvent.id, LowStockEvent.warehouse, LowStockEvent.sku).where(
        col(LowStockEvent.sku).in_(sorted({sku for _, sku in wanted})),
        col(LowStockEvent.resolved_at).is_(None),
    )
    return {
        (e.warehouse, e.sku): e.id for e in session.execute(query).all() if (e.warehouse, e.sku) in wanted
    }


def _refuse_another_spelling(session: Session, sku: str) -> None:
    """A new stock row for "abc-1" when "ABC-1" is stocked: refused (domain.identifiers)."""
    query = select(Stock.sku).where(func.lower(Stock.sku) == sku.lower(), col(Stock.sku) != sku)
    stocked = session.exec(query.limit(1)).first()
    if stocked is not None:
        raise SkuSpelling(
            f"{sku} is stocked as {stocked}: SKUs that differ only in case are one item, so set the "
            f"stock of {stocked} (or rename it everywhere first)"
        )


@dataclass
class _ImportPlan:
    """What an import writes, row by row in (warehouse, sku) order, and the SKUs whose stock grew."""

    grown: set[str] = field(default_factory=set)
    rows: list[tuple[bool, dict[str, Any]]] = field(default_factory=list)  # (new?, values)
    levels: list[tuple[int, int]] = field(default_factory=list)  # (available, safety stock) after
    at: datetime = field(default_factory=utcnow)

    def add(self, row: CsvRow, old: Row[Any] | None) -> None:
        values: dict[str, Any] = {"warehouse": row.warehouse, "sku": row.sku, "on_hand": row.on_hand}
        values["updated_at"] = self.at
        if old is None:
            values |= {"locked": 0, "reserved": 0, "safety_stock": row.safety_stock or 0}
            self.rows.append((True, values))
            self.levels.append((row.on_hand, values["safety_stock"]))
            if row.on_hand > 0:
                self.grown.add(row.sku)
            return
        if row.on_hand < old.locked + old.reserved:
            raise StockConflict(
                f"line {row.line}: on_hand {row.on_hand} is below what orders hold: {old.locked} locked "
                f"and {old.reserved} reserved in {row.warehouse} for {row.sku}; nothing was imported"
            )
        if row.on_hand > old.on_hand:
            self.grown.add(row.sku)
        values["safety_stock"] = old.safety_stock if row.safety_stock is None else row.safety_stock
        self.rows.append((False, values))
        self.levels.append((row.on_hand - old.locked - old.reserved, values["safety_stock"]))

    def write(
        self, session: Session, start: int, end: int, opened: dict[tuple[str, str], int | None]
    ) -> None:
        """Rows start..end: one INSERT, one UPDATE, and the low-stock events they open or close."""
        rows, levels = self.rows[start:end], self.levels[start:end]
        if inserts := [values for new, values in rows if new]:
            session.execute(insert(Stock), inserts)
        if updates := [values for new, values in rows if not new]:
            session.execute(update(Stock), updates)
        events, recovered = [], []
        for (_, values), (available, safety) in zip(rows, levels, strict=True):
            key = (values["warehouse"], values["sku"])
            if available < safety and key not in opened:
                events.append(
                    {"warehouse": key[0], "sku": key[1], "available": available, "safety_stock": safety}
                )
            elif available >= safety and opened.get(key) is not None:
                recovered.append(opened[key])
        if events:
            session.execute(insert(LowStockEvent), [e | {"at": self.at} for e in events])
        if recovered:
            query = update(LowStockEvent).where(col(LowStockEvent.id).in_(recovered))
            session.execute(query.values(resolved_at=self.at))


class InventoryService:
    def __init__(
        self,
        engine: Engine,
        warehouses: WarehouseService | None = None,
        rules: tuple[AllocationRule, ...] | None = None,
    ) -> None:
        self._engine = engine
        self._warehouses = warehouses or WarehouseService(engine)
        self._rules = rules

    # ------------------------------------------------------------------ counts
    def get(self, warehouse: str, sku: str) -> StockLevel | None:
        with Session(self._engine) as session:
            row = session.get(Stock, (warehouse, sku))
            return _level(row) if row else None

    def levels(self, sku: str | None = None) -> list[StockLevel]:
        query = select(Stock).order_by(col(Stock.warehouse), col(Stock.sku))
        if sku:
            query = query.where(Stock.sku == sku)
        with Session(self._engine) as session:
            return [_level(row) for row in session.exec(query).all()]

    def unknown_skus(self, skus: list[str]) -> list[str]:
        """The SKUs no warehouse has a stock row for: never stocked anywhere, so no restock is coming
        by itself (a channel SKU that needs mapping, or stock never booked in)."""
        wanted = sorted(set(skus))
        query = select(Stock.sku).where(col(Stock.sku).in_(wanted)).distinct()
        with Session(self._engine) as session:
            known = set(session.exec(query).all())
        return [sku for sku in wanted if sku not in known]

    def set_on_hand(
        self, warehouse: str, sku: str, on_hand: int, safety_stock: int | None = None
    ) -> StockLevel:
        """Set the counted quantity; refused when it would leave less than is locked or reserved."""
        values: dict[str, object] = {"on_hand": on_hand, "updated_at": utcnow()}
        if safety_stock is not None:
            values["safety_stock"] = safety_stock
        with transaction(self._engine) as session:
            result = session.execute(
                update(Stock)
                .where(col(Stock.warehouse) == warehouse, col(Stock.sku) == sku)
                .where(col(Stock.locked) + col(Stock.reserved) <= on_hand)
                .values(**values)
            )
            row = session.get(Stock, (warehouse, sku), populate_existing=True)
            if row is None:
                _refuse_another_spelling(session, sku)
                row = Stock(warehouse=warehouse, sku=sku, on_hand=on_hand, safety_stock=safety_stock or 0)
                session.add(row)
            elif result.rowcount == 0:  # type: ignore[attr-defined]
                raise StockConflict(
                    f"on_hand {on_hand} is below what orders hold: {row.locked} locked and "
                    f"{row.reserved} reserved in {warehouse} for {sku}"
                )
            session.flush()
            self._watch_safety_stock(session, [(warehouse, sku)])
            return _level(row)

    def import_counts(self, rows: Sequence[CsvRow]) -> list[str]:
        """Set many counts at once, all or nothing; returns the SKUs whose available stock grew.

        One transaction in bounded statements: the rows are read (SELECT ... FOR UPDATE, in
        (warehouse, sku) order) and checked IMPORT_BATCH at a time before anything is written, then
        written with one INSERT and one UPDATE per batch. No statement carries more than a few
        thousand bind parameters, whatever the file's size, and reading before writing keeps the
        planner's view of the table as it was (rows inserted by this transaction are not analysed).

        Raises BadCsv naming the line of a row for a warehouse nobody registered or a SKU the stock
        already spells in another case, and StockConflict naming the line of the first row that would
        leave less than orders hold; nothing is imported then.
        """
        known = self._warehouses.codes()
        for row in rows:
            if row.warehouse not in known:
                raise BadCsv(
                    f"line {row.line}, column warehouse: no warehouse {row.warehouse!r} is registered; "
                    f"describe it first (PUT /warehouses/{row.warehouse}); nothing was imported"
                )
        ordered = sorted(rows, key=lambda r: (r.warehouse, r.sku))  # one lock order for every writer
        batches = [ordered[start : start + IMPORT_BATCH] for start in range(0, len(ordered), IMPORT_BATCH)]
        with transaction(self._engine) as session:
            self._refuse_other_spellings(session, rows)
            current: dict[tuple[str, str], Row[Any]] = {}
            opened: dict[tuple[str, str], int | None] = {}
            for batch in batches:
                current |= _lock_batch(session, batch)
                opened |= _open_events(session, batch)
            plan = _ImportPlan()
            for row in ordered:
                plan.add(row, current.get((row.warehouse, row.sku)))
            for start in range(0, len(ordered), IMPORT_BATCH):
                plan.write(session, start, start + IMPORT_BATCH, opened)
        return sorted(plan.grown)

    @staticmethod
    def _refuse_other_spellings(session: Session, rows: Sequence[CsvRow]) -> None:
        """A SKU the stock already holds in another case ("abc-1" when "ABC-1" is stocked) is one item
        written two ways: refused, so no warehouse counts it twice (domain.identifiers)."""
        catalog = {sku_key(sku): sku for sku in session.exec(select(Stock.sku).distinct()).all()}
        for row in rows:
            stocked = catalog.get(sku_key(row.sku), row.sku)
            if stocked != row.sku:
                raise BadCsv(
                    f"line {row.line}, column sku: {row.sku!r} is stocked as {stocked!r}; SKUs that "
                    f"differ only in case are one item, so write it {stocked!r}; nothing was imported"
                )

    def sellable(self, sku: str | None = None) -> dict[str, int]:
        """Units a channel may list per SKU: available above safety stock, summed over warehouses."""
        above_safety = col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved) - col(Stock.safety_stock)
        spare = case((above_safety > 0, above_safety), else_=0)
        query = select(Stock.sku, func.sum(spare)).group_by(col(Stock.sku)).order_by(col(Stock.sku))
        if sku:
            query = query.where(Stock.sku == sku)
        with Session(self._engine) as session:
            return {name: int(units or 0) for name, units in session.exec(query).all()}

    def changed_since(self, since: datetime) -> dict[str, datetime]:
        """SKUs whose stock changed after `since` (set, imported, reserved, locked, released, shipped),
        each with its latest change: what the stock push sends to the shops."""
        latest = func.max(col(Stock.updated_at))
        query = select(Stock.sku, latest).where(col(Stock.updated_at) > since).group_by(col(Stock.sku))
        with Session(self._engine) as session:
            return {sku: _utc(at) for sku, at in session.exec(query).all()}

    def low_stock(self, open_only: bool = True) -> list[LowStockEvent]:
        query = select(LowStockEvent).order_by(col(LowStockEvent.at))
        if open_only:
            query = query.where(col(LowStockEvent.resolved_at).is_(None))
        with Session(self._engine) as session:
            return list(session.exec(query).all())

    # ------------------------------------------------------------------ reservations and locks
    def reserve_order(
        self, order_id: str, lines: list[OrderLine], destination: str, *, reserve: bool = True
    ) -> Reservation:
        """Reserve an unpaid order's stock where it would ship from (nothing when it cannot all be),
        and say how much pressure its items are under afterwards."""
        plan = self._allocate_once(order_id, 0, "reserve", lines, destination, None) if reserve else None
        scarce, tight = self._pressure(lines)
        return Reservation(
            reserved=bool(plan and plan.complete),
            parts=plan.parts if plan else [],
            scarce=scarce,
            tight=tight,
        )

    def lock_order(
        self,
        order_id: str,
        lines: list[OrderLine],
        destination: str,
        *,
        generation: int = 0,
        warehouse: str | None = None,
    ) -> StockLock:
        """Lock every line, in one warehouse if one can ship it all, else in the fewest parts.

        The order's reservation is turned into the lock in the same transaction. All or nothing: when
        stock is short nothing changes (the reservation stays) and the plan's shortages come back.
        """
        plan = self._allocate_once(order_id, generation, "lock", lines, destination, warehouse)
        return StockLock(
            locked=plan.complete,
            parts=plan.parts,
            shortages=plan.shortages,
            suggestions=plan.suggestions,
        )

    def release_order(self, order_id: str) -> int:
        """Give back whatever the order still holds, locked or reserved; returns the units."""
        with transaction(self._engine) as session:
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
            _lock_rows(session, skus={m.sku for m in moves})
            units = self._close(session, _outstanding(moves, "lock"), "release")
            units += self._close(session, _outstanding(moves, "reserve"), "unreserve")
            return units

    def held_by(self, order_id: str) -> dict[str, int]:
        """Units the order still holds, by kind: {"lock": n, "reserve": m}; zeros when none."""
        with Session(self._engine) as session:
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
        return {kind: sum(m.quantity for m in _outstanding(moves, kind)) for kind in ("lock", "reserve")}

    def ledger_problems(self) -> list[str]:
        """Stock rows whose locked or reserved count differs from what the ledger says is held."""
        with Session(self._engine) as session:
            moves = session.exec(select(StockMove)).all()
            rows = session.exec(select(Stock)).all()
        by_order: dict[str, list[StockMove]] = {}
        for move in moves:
            by_order.setdefault(move.order_id, []).append(move)
        held: dict[tuple[str, str, str], int] = {}
        for order_moves in by_order.values():
            for kind in ("lock", "reserve"):
                for move in _outstanding(order_moves, kind):
                    key = (move.warehouse, move.sku, kind)
                    held[key] = held.get(key, 0) + move.quantity
        problems = []
        for row in rows:
            locked, reserved = (
                held.get((row.warehouse, row.sku, "lock"), 0),
                held.get((row.warehouse, row.sku, "reserve"), 0),
            )
            if (row.locked, row.reserved) != (locked, reserved) or row.on_hand < row.locked + row.reserved:
                problems.append(
                    f"{row.warehouse}/{row.sku}: on_hand {row.on_hand}, locked {row.locked} "
                    f"(ledger {locked}), reserved {row.reserved} (ledger {reserved})"
                )
        return problems

    def ship_order(self, order_id: str, warehouse: str) -> int:
        """A parcel left `warehouse`: its locked units leave on_hand too. Returns the units shipped."""
        with transaction(self._engine) as session:
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
            held = [m for m in _outstanding(moves, "lock") if m.warehouse == warehouse]
            _lock_rows(session, skus={m.sku for m in held})
            return self._close(session, held, "ship")

    def shipped_today(self, now: datetime | None = None) -> dict[str, int]:
        """Orders allocated per warehouse since midnight UTC: what daily capacity is measured on."""
        with Session(self._engine) as session:
            return _shipped_today(session, now or datetime.now(UTC))

    # ------------------------------------------------------------------ internals
    def _allocate_once(
        self,
        order_id: str,
        generation: int,
        kind: str,
        lines: list[OrderLine],
        destination: str,
        warehouse: str | None,
    ) -> AllocationPlan:
        conflict: IntegrityError | None = None
        for _ in range(_ALLOCATION_ATTEMPTS):
            earlier = self._claimed(order_id, generation, kind)
            if earlier is not None:
                return earlier
            try:
                return self._allocate(order_id, generation, kind, lines, destination, warehouse)
            except IntegrityError as exc:
                conflict = exc  # a racing attempt claimed this allocation first: read its plan
                continue
            except _Lost:
                conflict = None
                continue  # stock moved under us: plan again on fresh numbers
        earlier = self._claimed(order_id, generation, kind)
        if earlier is not None:
            return earlier
        if conflict is not None:  # no racing claim to read: a constraint no retry can satisfy
            raise conflict
        raise RuntimeError(f"could not allocate {order_id} after {_ALLOCATION_ATTEMPTS} attempts")

    def _allocate(
        self,
        order_id: str,
        generation: int,
        kind: str,
        lines: list[OrderLine],
        destination: str,
        warehouse: str | None,
    ) -> AllocationPlan:
        with transaction(self._engine) as session:
            session.add(StockAllocation(order_id=order_id, generation=generation, kind=kind, plan={}))
            session.flush()  # the claim first: a concurrent attempt for this order stops here
            moves = session.exec(select(StockMove).where(StockMove.order_id == order_id)).all()
            # Every row this transaction may change, locked up front in one global order, so two
            # allocations (or an allocation and a cancel) never wait for each other in a cycle.
            _lock_rows(session, skus={line.sku for line in lines} | {m.sku for m in moves})
            if kind == "lock":
                # The reservation becomes the lock: free it inside this transaction, then allocate.
                self._close(session, _outstanding(moves, "reserve"), "lock_from_reserve")
                older = [m for m in _outstanding(moves, "lock") if m.generation < generation]
                self._close(session, older, "release")
            plan = self._plan(session, lines, destination, warehouse)
            if not plan.complete:
                session.rollback()
                return plan
            column = col(Stock.locked) if kind == "lock" else col(Stock.reserved)
            touched: list[tuple[str, str]] = []
            for part in sorted(plan.parts, key=lambda p: p.warehouse):
                for item in sorted(part.lines, key=lambda i: i.sku):
                    result = session.execute(
                        update(Stock)
                        .where(col(Stock.warehouse) == part.warehouse, col(Stock.sku) == item.sku)
                        .where(col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved) >= item.quantity)
                        .values({column: column + item.quantity, "updated_at": utcnow()})
                    )
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Lost()
                    session.add(
                        StockMove(
                            order_id=order_id,
                            line_no=item.line_no,
                            generation=generation,
                            warehouse=part.warehouse,
                            sku=item.sku,
                            kind=kind,
                            quantity=item.quantity,
                        )
                    )
                    touched.append((part.warehouse, item.sku))
            claim = session.get(StockAllocation, (order_id, generation, kind))
            assert claim is not None
            claim.plan = plan.model_dump(mode="json")
            session.flush()
            self._watch_safety_stock(session, touched)
            return plan

    def _plan(
        self, session: Session, lines: list[OrderLine], destination: str, warehouse: str | None
    ) -> AllocationPlan:
        skus = {line.sku for line in lines}
        rows = session.exec(select(Stock).where(col(Stock.sku).in_(skus))).all()
        available = {(r.warehouse, r.sku): r.on_hand - r.locked - r.reserved for r in rows}
        warehouses = self._warehouses.infos(known=[r.warehouse for r in rows], session=session)
        if warehouse is not None:
            warehouses = [w for w in warehouses if w.code == warehouse]
        return allocate(
            lines,
            destination,
            warehouses,
            available,
            _shipped_today(session, datetime.now(UTC)),
            self._rules or self._warehouses.rules,
        )

    def _claimed(self, order_id: str, generation: int, kind: str) -> AllocationPlan | None:
        with Session(self._engine) as session:
            claim = session.get(StockAllocation, (order_id, generation, kind))
            return AllocationPlan.model_validate(claim.plan) if claim and claim.plan else None

    def _close(self, session: Session, rows: list[StockMove], kind: str) -> int:
        """Release, unreserve, ship or convert rows: stock first, then the ledger row; low-stock
        events follow the rows touched, whichever path closed them."""
        units = 0
        for row in rows:
            if kind in ("unreserve", "lock_from_reserve"):
                values = {"reserved": col(Stock.reserved) - row.quantity}
            else:
                values = {"locked": col(Stock.locked) - row.quantity}
                if kind == "ship":
                    values["on_hand"] = col(Stock.on_hand) - row.quantity
            session.execute(
                update(Stock)
                .where(col(Stock.warehouse) == row.warehouse, col(Stock.sku) == row.sku)
                .values(**values, updated_at=utcnow())
            )
            session.add(_move(row, kind))
            units += row.quantity
        session.flush()
        self._watch_safety_stock(session, [(row.warehouse, row.sku) for row in rows])
        return units

    def _pressure(self, lines: list[OrderLine]) -> tuple[list[str], list[str]]:
        """SKUs whose available stock over all warehouses is at or under their safety stock (scarce),
        or under twice it (tight)."""
        skus = sorted({line.sku for line in lines})
        query = (
            select(
                Stock.sku,
                func.sum(col(Stock.on_hand) - col(Stock.locked) - col(Stock.reserved)),
                func.sum(col(Stock.safety_stock)),
            )
            .where(col(Stock.sku).in_(skus))
            .group_by(col(Stock.sku))
        )
        with Session(self._engine) as session:
            totals = {sku: (int(a or 0), int(s or 0)) for sku, a, s in session.exec(query).all()}
        scarce = [sku for sku in skus if totals.get(sku, (0, 0))[0] <= totals.get(sku, (0, 0))[1]]
        tight = [sku for sku in skus if sku not in scarce and totals[sku][0] < 2 * totals[sku][1]]
        return scarce, tight

    def _watch_safety_stock(self, session: Session, keys: list[tuple[str, str]]) -> None:
        """Open a low-stock event when a row falls under its safety stock; close it when it recovers."""
        for warehouse, sku in sorted(set(keys)):
            row = session.get(Stock, (warehouse, sku), populate_existing=True)
            if row is None:
                continue
            available = row.on_hand - row.locked - row.reserved
            open_event = session.exec(
                select(LowStockEvent).where(
                    LowStockEvent.warehouse == warehouse,
                    LowStockEvent.sku == sku,
                    col(LowStockEvent.resolved_at).is_(None),
                )
            ).first()
            if available < row.safety_stock and open_event is None:
                session.add(
                    LowStockEvent(
                        warehouse=warehouse, sku=sku, available=available, safety_stock=row.safety_stock
                    )
                )
            elif available >= row.safety_stock and open_event is not None:
                open_event.resolved_at = utcnow()
        session.flush()
