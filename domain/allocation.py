"""Which warehouses ship a paid order: the best single one, else the fewest split shipments, else why not."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from itertools import combinations
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, StringConstraints, model_validator

from domain.models import CountryCode, Model, OrderLine, Part, PartLine
from domain.regions import Region, region_of

# Set search is exponential in the number of warehouses holding stock; past this many, the rest only
# join through the rank-order fallback (sellers rarely run more than a handful of warehouses).
MAX_SEARCH_CANDIDATES = 12


class ShippingOption(Model):
    """What one shipment from a warehouse to a region costs and how long it takes."""

    cost: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    days: Annotated[int, Field(ge=0)]


class WarehouseInfo(Model):
    """A warehouse as allocation sees it; it ships only to the regions listed in `shipping`."""

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    # None for stock in a warehouse nobody has described yet: never "same region" as a destination.
    country: CountryCode | None
    region: Region | None
    daily_capacity: Annotated[int, Field(ge=0)] | None = None  # shipments per day; None: no limit
    shipping: dict[Region, ShippingOption]

    @model_validator(mode="after")
    def _region_matches_country(self) -> WarehouseInfo:
        if self.country is not None and self.region != region_of(self.country):
            raise ValueError(f"region '{self.region}' does not match {self.country}")
        return self


class AllocationRule(StrEnum):
    SAME_REGION = "same_region"
    CAPACITY = "capacity"
    COST = "cost"
    DAYS = "days"


DEFAULT_RULES: tuple[AllocationRule, ...] = tuple(AllocationRule)  # the declaration order above


def parse_rules(text: str) -> tuple[AllocationRule, ...]:
    """Rules from a setting such as "same_region,cost,days"."""
    rules: list[AllocationRule] = []
    for name in (item.strip().lower() for item in text.split(",") if item.strip()):
        try:
            rule = AllocationRule(name)
        except ValueError:
            known = ", ".join(AllocationRule)
            raise ValueError(f"unknown allocation rule '{name}'; known rules: {known}") from None
        if rule in rules:
            raise ValueError(f"allocation rule '{name}' is listed twice")
        rules.append(rule)
    return tuple(rules)


class Suggestion(Model):
    action: Literal["transfer", "wait-for-restock", "cancel"]
    detail: str


class StockShortage(Model):
    """A SKU the order needs more of than the warehouses that can ship it hold."""

    sku: str
    requested: int
    available: int


class AllocationPlan(Model):
    parts: list[Part] = Field(default_factory=list)
    shortages: list[StockShortage] = Field(default_factory=list)
    suggestions: list[Suggestion] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.shortages and bool(self.parts)

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


class _Candidate(NamedTuple):
    code: str
    away: int  # 1 when outside the destination region
    spare: Decimal  # shipments left today; Infinity without a limit
    cost: Decimal
    days: int


def _rank(c: _Candidate, rules: Sequence[AllocationRule]) -> tuple[tuple[Decimal, ...], str]:
    keys = {
        AllocationRule.SAME_REGION: (Decimal(c.away),),
        AllocationRule.CAPACITY: (Decimal(c.spare <= 0), -c.spare),
        AllocationRule.COST: (c.cost,),
        AllocationRule.DAYS: (Decimal(c.days),),
    }
    return tuple(value for rule in rules for value in keys[rule]), c.code


def _set_rank(
    chosen: Sequence[_Candidate], rules: Sequence[AllocationRule]
) -> tuple[tuple[Decimal, ...], tuple[str, ...]]:
    totals = {
        AllocationRule.SAME_REGION: Decimal(sum(c.away for c in chosen)),
        AllocationRule.CAPACITY: Decimal(sum(c.spare <= 0 for c in chosen)),
        AllocationRule.COST: sum((c.cost for c in chosen), Decimal(0)),
        AllocationRule.DAYS: Decimal(max(c.days for c in chosen)),
    }
    return tuple(totals[rule] for rule in rules), tuple(sorted(c.code for c in chosen))


def allocate(
    lines: Sequence[OrderLine],
    destination_country: str,
    warehouses: Sequence[WarehouseInfo],
    available: Mapping[tuple[str, str], int],
    shipped_today: Mapping[str, int],
    rules: Sequence[AllocationRule] = DEFAULT_RULES,
) -> AllocationPlan:
    """Plan the shipments of an order; `available` is (warehouse, sku) -> units free for this order.

    Only warehouses that ship to the destination's region are considered. Rules rank them in order:
    same_region (in the destination region first), capacity (room left today first, no limit counting
    as most room; a full warehouse is a last resort, not excluded), cost, days; then the code.

    1. One shipment: the best-ranked warehouse that holds every line in full.
    2. Otherwise the fewest shipments: the smallest set of warehouses whose stock together covers
       every line. Among sets of that size the rules compare totals: parts outside the region, parts
       from full warehouses, summed cost (each part pays its own shipping), slowest part's days; then
       the sorted codes. Each line goes whole to the best-ranked warehouse of the set holding it in
       full, or else is split across the set in rank order.
    3. Otherwise no parts: a shortage per short SKU (available = total across considered warehouses)
       and suggestions: transfer from warehouses that do not ship there, wait for restock of what no
       transfer covers, cancel.
    """
    region = region_of(destination_country)
    codes = [w.code for w in warehouses]
    if duplicates := sorted({code for code in codes if codes.count(code) > 1}):
        raise ValueError(f"warehouses listed twice: {', '.join(duplicates)}")
    if not lines:
        return AllocationPlan()

    def stock(code: str, sku: str) -> int:
        return max(0, available.get((code, sku), 0))

    needed: dict[str, int] = {}
    for line in lines:
        needed[line.sku] = needed.get(line.sku, 0) + line.quantity
    shippers = sorted(
        (_candidate(w, region, shipped_today) for w in warehouses if region in w.shipping),
        key=lambda c: _rank(c, rules),
    )

    def covers(chosen: Sequence[_Candidate]) -> bool:
        return all(sum(stock(c.code, sku) for c in chosen) >= qty for sku, qty in needed.items())

    if single := next((c for c in shippers if covers([c])), None):
        return AllocationPlan(parts=_assign(lines, [single.code], stock))
    if not covers(shippers):
        return _shortage_plan(destination_country.strip().upper(), needed, shippers, available, stock)

    useful = [c for c in shippers if any(stock(c.code, sku) for sku in needed)]
    pool = useful[:MAX_SEARCH_CANDIDATES]
    for size in range(2, len(pool) + 1):
        if sets := [s for s in combinations(pool, size) if covers(s)]:
            best = min(sets, key=lambda s: _set_rank(s, rules))  # combinations keep rank order
            return AllocationPlan(parts=_assign(lines, [c.code for c in best], stock))
    # Beyond the search: the best-ranked warehouses, as many as it takes.
    chosen = next(useful[:n] for n in range(len(pool) + 1, len(useful) + 1) if covers(useful[:n]))
    return AllocationPlan(parts=_assign(lines, [c.code for c in chosen], stock))


def _candidate(w: WarehouseInfo, region: Region, shipped_today: Mapping[str, int]) -> _Candidate:
    option = w.shipping[region]
    spare = Decimal("Infinity")
    if w.daily_capacity is not None:
        spare = Decimal(w.daily_capacity - shipped_today.get(w.code, 0))
    return _Candidate(w.code, int(w.region != region), spare, option.cost, option.days)


def _assign(lines: Sequence[OrderLine], codes: list[str], stock: Callable[[str, str], int]) -> list[Part]:
    left = {(code, line.sku): stock(code, line.sku) for code in codes for line in lines}
    taken: dict[str, list[PartLine]] = {code: [] for code in codes}
    for line_no, line in enumerate(lines):
        holders = [code for code in codes if left[code, line.sku] >= line.quantity]
        need = line.quantity
        for code in holders[:1] or codes:
            quantity = min(need, left[code, line.sku])
            if quantity > 0:
                left[code, line.sku] -= quantity
                taken[code].append(PartLine(line_no=line_no, sku=line.sku, quantity=quantity))
                need -= quantity
    return [Part(warehouse=code, lines=taken[code]) for code in codes if taken[code]]


def _shortage_plan(
    country: str,
    needed: dict[str, int],
    shippers: list[_Candidate],
    available: Mapping[tuple[str, str], int],
    stock: Callable[[str, str], int],
) -> AllocationPlan:
    considered = {c.code for c in shippers}
    shortages: list[StockShortage] = []
    transfers: list[Suggestion] = []
    waits: list[Suggestion] = []
    for sku, requested in needed.items():
        total = sum(stock(c.code, sku) for c in shippers)
        if total >= requested:
            continue
        shortages.append(StockShortage(sku=sku, requested=requested, available=total))
        missing = requested - total
        if not shippers:
            continue  # no stock anywhere can reach the customer, so restock would not help either
        # The shipper already holding most of the SKU receives it (rank order breaks ties).
        target = min(shippers, key=lambda c: -stock(c.code, sku)).code
        sources = sorted(
            ((code, held) for (code, s), held in available.items() if s == sku and code not in considered),
            key=lambda source: (-source[1], source[0]),
        )
        for code, held in sources:
            if (moved := min(missing, held)) > 0:
                detail = f"transfer {moved} x {sku} to {target} from {code} (holds {held})"
                transfers.append(Suggestion(action="transfer", detail=detail))
                missing -= moved
        if missing:
            waits.append(
                Suggestion(action="wait-for-restock", detail=f"wait for restock of {missing} x {sku}")
            )
    cancel = "cancel and refund the order" + ("" if shippers else f" (no warehouse ships to {country})")
    return AllocationPlan(
        shortages=shortages, suggestions=[*transfers, *waits, Suggestion(action="cancel", detail=cancel)]
    )
