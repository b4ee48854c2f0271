"""Warehouse allocation: which warehouse ships an order, how it splits, and what an operator is told."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations

import pytest
from pydantic import ValidationError

from domain.allocation import (
    DEFAULT_RULES,
    AllocationPlan,
    AllocationRule,
    ShippingOption,
    StockShortage,
    WarehouseInfo,
    allocate,
    parse_rules,
)
from domain.codes import COUNTRIES
from domain.models import OrderLine
from domain.regions import _COUNTRIES_BY_REGION, Region, region_of

SAME_REGION, CAPACITY, COST, DAYS = (
    AllocationRule.SAME_REGION,
    AllocationRule.CAPACITY,
    AllocationRule.COST,
    AllocationRule.DAYS,
)


def warehouse(
    code: str, country: str, ships: dict[Region, tuple[str, int]], capacity: int | None = None
) -> WarehouseInfo:
    return WarehouseInfo(
        code=code,
        country=country,
        region=region_of(country),
        daily_capacity=capacity,
        shipping={
            region: ShippingOption(cost=Decimal(cost), days=days) for region, (cost, days) in ships.items()
        },
    )


# China ships everywhere, cheap and slow; the overseas warehouses ship only within their region, fast.
SZ_LANES = {
    Region.NA: ("4.00", 12),
    Region.LATAM: ("6.00", 20),
    Region.EU: ("4.50", 14),
    Region.ASIA: ("2.00", 4),
    Region.OCEANIA: ("5.00", 12),
    Region.MEA: ("6.00", 18),
}
SZ = warehouse("WH-SZ", "CN", SZ_LANES)
LA = warehouse("WH-LA", "US", {Region.NA: ("6.00", 3)})
NY = warehouse("WH-NY", "US", {Region.NA: ("5.50", 2)})
FRA = warehouse("WH-FRA", "DE", {Region.EU: ("5.00", 3)})
ALL = [SZ, LA, FRA]


def order_lines(*lines: tuple[str, int]) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("9.99")) for sku, quantity in lines]


def stock_of(held: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    return {(code, sku): units for code, skus in held.items() for sku, units in skus.items()}


def render(plan: AllocationPlan) -> str:
    """ "WH-LA A2 B1 | WH-SZ C1": each part, its lines' SKUs and quantities, in plan order."""
    return " | ".join(
        " ".join([part.warehouse, *(f"{line.sku}{line.quantity}" for line in part.lines)])
        for part in plan.parts
    )


@dataclass(frozen=True)
class Case:
    lines: list[tuple[str, int]]
    destination: str
    held: dict[str, dict[str, int]]
    expected: str
    warehouses: list[WarehouseInfo] = field(default_factory=lambda: ALL)
    rules: tuple[AllocationRule, ...] = DEFAULT_RULES
    shipped_today: dict[str, int] = field(default_factory=dict)


EVERYONE_HOLDS_A = {"WH-SZ": {"A": 5}, "WH-LA": {"A": 5}, "WH-FRA": {"A": 5}}
LA_FULL = warehouse("WH-LA", "US", {Region.NA: ("6.00", 3)}, capacity=40)
TIED = [warehouse(code, "US", {Region.NA: ("5.00", 3)}) for code in ("WH-B", "WH-A", "WH-C")]

PLANS = {
    "same region wins over cost": Case([("A", 2)], "US", EVERYONE_HOLDS_A, "WH-LA A2"),
    "cost first when rules put it first": Case(
        [("A", 2)], "US", EVERYONE_HOLDS_A, "WH-SZ A2", rules=(COST, SAME_REGION)
    ),
    "same region in Europe": Case([("A", 2)], "DE", EVERYONE_HOLDS_A, "WH-FRA A2"),
    "capacity full goes to the next": Case(
        [("A", 2)],
        "US",
        {"WH-LA": {"A": 5}, "WH-NY": {"A": 5}},
        "WH-NY A2",
        warehouses=[LA_FULL, warehouse("WH-NY", "US", {Region.NA: ("7.00", 2)})],
        shipped_today={"WH-LA": 40},
    ),
    "by default a full warehouse in region beats one abroad": Case(
        [("A", 2)], "US", EVERYONE_HOLDS_A, "WH-LA A2", warehouses=[SZ, LA_FULL], shipped_today={"WH-LA": 40}
    ),
    "capacity before region when rules say so": Case(
        [("A", 2)],
        "US",
        EVERYONE_HOLDS_A,
        "WH-SZ A2",
        warehouses=[SZ, LA_FULL],
        rules=(CAPACITY, SAME_REGION),
        shipped_today={"WH-LA": 40},
    ),
    "a full warehouse is still a last resort": Case(
        [("A", 2)],
        "BR",
        EVERYONE_HOLDS_A,
        "WH-SZ A2",
        warehouses=[warehouse("WH-SZ", "CN", SZ_LANES, capacity=0), LA, FRA],
    ),
    "no limit counts as most room": Case(
        [("A", 1)],
        "US",
        {"WH-SZ": {"A": 1}, "WH-LA": {"A": 1}},
        "WH-SZ A1",
        warehouses=[SZ, warehouse("WH-LA", "US", {Region.NA: ("6.00", 3)}, capacity=50)],
        rules=(CAPACITY, COST),
    ),
    "more room left wins": Case(
        [("A", 1)],
        "US",
        {"WH-NY": {"A": 1}, "WH-LA": {"A": 1}},
        "WH-LA A1",
        warehouses=[
            warehouse("WH-LA", "US", {Region.NA: ("6.00", 3)}, capacity=50),
            warehouse("WH-NY", "US", {Region.NA: ("5.50", 2)}, capacity=50),
        ],
        rules=(CAPACITY, COST),
        shipped_today={"WH-NY": 30, "WH-LA": 10},
    ),
    "days break a cost tie": Case(
        [("A", 1)],
        "FR",
        {"WH-SZ": {"A": 1}, "WH-FRA": {"A": 1}},
        "WH-FRA A1",
        warehouses=[warehouse("WH-SZ", "CN", {Region.EU: ("5.00", 14)}), FRA],
        rules=(COST, DAYS),
    ),
    "only warehouses shipping to Brazil": Case(
        [("A", 2)], "BR", {"WH-SZ": {"A": 2}, "WH-LA": {"A": 9}, "WH-FRA": {"A": 9}}, "WH-SZ A2"
    ),
    "Japan from China": Case(
        [("A", 1), ("B", 1)], "JP", {"WH-SZ": {"A": 1, "B": 1}, "WH-LA": {"A": 1}}, "WH-SZ A1 B1"
    ),
    "identical warehouses tie-break by code": Case(
        [("A", 1)], "US", {"WH-A": {"A": 1}, "WH-B": {"A": 1}, "WH-C": {"A": 1}}, "WH-A A1", warehouses=TIED
    ),
    "split into two parts rather than three": Case(
        [("A", 2), ("B", 1), ("C", 1)],
        "US",
        {"WH-LA": {"A": 2}, "WH-NY": {"B": 1}, "WH-SZ": {"B": 1, "C": 1}},
        "WH-LA A2 | WH-SZ B1 C1",
        warehouses=[SZ, LA, NY],
    ),
    "one warehouse holding everything beats a split": Case(
        [("A", 2), ("B", 1)],
        "US",
        {"WH-LA": {"A": 2, "B": 0}, "WH-SZ": {"A": 2, "B": 1}, "WH-NY": {"A": 1}},
        "WH-SZ A2 B1",
        warehouses=[SZ, LA, NY],
    ),
    "a split keeps each line whole where it can": Case(
        [("A", 2), ("B", 1), ("C", 1)],
        "US",
        {"WH-LA": {"A": 2, "B": 1}, "WH-SZ": {"A": 2, "C": 1}},
        "WH-LA A2 B1 | WH-SZ C1",
    ),
    "the split set prefers the destination region": Case(
        [("A", 1), ("B", 1)],
        "US",
        {"WH-LA": {"A": 1}, "WH-NY": {"B": 1}, "WH-SZ": {"B": 1}},
        "WH-NY B1 | WH-LA A1",
        warehouses=[SZ, LA, NY],
    ),
    "the split set is ranked as a whole, not by its best member": Case(
        [("A", 1), ("B", 2)],
        "US",
        {"WH-LA": {"A": 1}, "WH-NY": {"B": 1}, "WH-DAL": {"A": 1, "B": 1}, "WH-SZ": {"B": 2}},
        "WH-NY B1 | WH-DAL A1 B1",
        warehouses=[
            SZ,
            warehouse("WH-LA", "US", {Region.NA: ("5.00", 3)}),
            NY,
            warehouse("WH-DAL", "US", {Region.NA: ("7.00", 2)}),
        ],
    ),
    "the split set by total cost when rules say so": Case(
        [("A", 1), ("B", 1)],
        "US",
        {"WH-LA": {"A": 1}, "WH-NY": {"B": 1}, "WH-SZ": {"B": 1}},
        "WH-SZ B1 | WH-LA A1",
        warehouses=[SZ, LA, NY],
        rules=(COST,),
    ),
    "a line split when no warehouse holds its quantity": Case(
        [("A", 5), ("B", 1)], "US", {"WH-LA": {"A": 3, "B": 1}, "WH-SZ": {"A": 4}}, "WH-LA A3 B1 | WH-SZ A2"
    ),
}


@pytest.mark.parametrize("case", PLANS.values(), ids=PLANS.keys())
def test_plans(case: Case) -> None:
    plan = allocate(
        order_lines(*case.lines),
        case.destination,
        case.warehouses,
        stock_of(case.held),
        case.shipped_today,
        case.rules,
    )
    assert render(plan) == case.expected
    assert plan.complete
    assert plan.split == ("|" in case.expected)
    assert plan.shortages == []
    assert plan.suggestions == []


CANCEL = "cancel and refund the order"
SHORTAGES = {
    "stock sits in a warehouse that does not ship there": (
        [("A", 3)],
        "US",
        {"WH-LA": {"A": 1}, "WH-FRA": {"A": 5}},
        [StockShortage(sku="A", requested=3, available=1)],
        ["transfer 2 x A to WH-LA from WH-FRA (holds 5)", CANCEL],
    ),
    "stock simply missing": (
        [("A", 1), ("B", 4)],
        "DE",
        {"WH-FRA": {"A": 1, "B": 1}, "WH-SZ": {"B": 1}},
        [StockShortage(sku="B", requested=4, available=2)],
        ["wait for restock of 2 x B", CANCEL],
    ),
    "transfers first, restock for the rest": (
        [("A", 6), ("B", 2)],
        "BR",
        {"WH-SZ": {"A": 1}, "WH-LA": {"A": 2}, "WH-FRA": {"A": 2}, "WH-OLD": {"A": 9, "B": 0}},
        [StockShortage(sku="A", requested=6, available=1), StockShortage(sku="B", requested=2, available=0)],
        [
            "transfer 5 x A to WH-SZ from WH-OLD (holds 9)",
            "wait for restock of 2 x B",
            CANCEL,
        ],
    ),
    "several sources, largest first": (
        [("A", 4)],
        "JP",
        {"WH-SZ": {"A": 1}, "WH-LA": {"A": 2}, "WH-FRA": {"A": 2}},
        [StockShortage(sku="A", requested=4, available=1)],
        [
            "transfer 2 x A to WH-SZ from WH-FRA (holds 2)",
            "transfer 1 x A to WH-SZ from WH-LA (holds 2)",
            CANCEL,
        ],
    ),
    "no warehouse ships to the region": (
        [("A", 1)],
        "ZA",
        {"WH-LA": {"A": 5}},
        [StockShortage(sku="A", requested=1, available=0)],
        [f"{CANCEL} (no warehouse ships to ZA)"],
    ),
}


@pytest.mark.parametrize(
    ("lines", "destination", "held", "shortages", "suggestions"), SHORTAGES.values(), ids=SHORTAGES.keys()
)
def test_shortages(
    lines: list[tuple[str, int]],
    destination: str,
    held: dict[str, dict[str, int]],
    shortages: list[StockShortage],
    suggestions: list[str],
) -> None:
    warehouses = [LA, FRA] if destination == "ZA" else ALL
    plan = allocate(order_lines(*lines), destination, warehouses, stock_of(held), {})
    assert plan.parts == []
    assert not plan.complete
    assert plan.shortages == shortages
    assert [s.detail for s in plan.suggestions] == suggestions
    assert [s.action for s in plan.suggestions][-1] == "cancel"


def test_the_transfer_target_is_the_shipper_already_holding_most() -> None:
    held = {"WH-LA": {"A": 1}, "WH-NY": {"A": 2}, "WH-FRA": {"A": 9}}
    plan = allocate(order_lines(("A", 4)), "CA", [SZ, LA, NY, FRA], stock_of(held), {})
    assert [s.detail for s in plan.suggestions] == ["transfer 1 x A to WH-NY from WH-FRA (holds 9)", CANCEL]


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("same_region,cost,days", (SAME_REGION, COST, DAYS)),
        (" Cost , capacity ", (COST, CAPACITY)),
        ("same_region,capacity,cost,days", DEFAULT_RULES),
        ("", ()),
    ],
    ids=["three", "spaces-and-case", "defaults", "empty"],
)
def test_parse_rules(text: str, rules: tuple[AllocationRule, ...]) -> None:
    assert parse_rules(text) == rules


@pytest.mark.parametrize(
    ("text", "message"),
    [("cost,speed", "unknown allocation rule 'speed'"), ("cost,days,cost", "'cost' is listed twice")],
    ids=["unknown", "twice"],
)
def test_parse_rules_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(text)


def test_a_warehouse_region_must_match_its_country() -> None:
    with pytest.raises(ValidationError, match="does not match US"):
        WarehouseInfo(code="WH-LA", country="US", region=Region.EU, shipping={})
    with pytest.raises(ValidationError):
        ShippingOption(cost=Decimal("-1"), days=1)


def test_past_the_search_limit_warehouses_join_in_rank_order() -> None:
    many = [warehouse(f"WH-{i:02}", "US", {Region.NA: (f"{i}.00", 3)}) for i in range(14)]
    held = {w.code: {"A": 1} for w in many}
    plan = allocate(order_lines(("A", 14)), "US", many, stock_of(held), {})
    assert [part.warehouse for part in plan.parts] == [w.code for w in many]
    assert plan.complete


def test_a_warehouse_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="WH-LA"):
        allocate(order_lines(("A", 1)), "US", [LA, SZ, LA], {}, {})


def test_every_country_has_exactly_one_region() -> None:
    listed = [code for codes in _COUNTRIES_BY_REGION.values() for code in codes.split()]
    assert sorted(listed) == sorted(COUNTRIES)
    assert {region_of(code) for code in COUNTRIES} == set(Region)


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("US", Region.NA),
        ("mx", Region.NA),
        ("PR", Region.NA),
        ("BR", Region.LATAM),
        ("JM", Region.LATAM),
        ("GB", Region.EU),
        ("CH", Region.EU),
        ("NO", Region.EU),
        ("CN", Region.ASIA),
        ("JP", Region.ASIA),
        ("AU", Region.OCEANIA),
        ("AE", Region.MEA),
        ("ZA", Region.MEA),
    ],
)
def test_region_of(country: str, region: Region) -> None:
    assert region_of(country) == region


def test_region_of_an_unknown_code() -> None:
    with pytest.raises(ValueError, match="'XX'"):
        region_of("XX")


# Random small worlds, checked against brute force.
REGIONS = list(Region)
COUNTRY_OF = {Region.NA: "US", Region.EU: "DE", Region.ASIA: "CN", Region.LATAM: "BR"}


def random_world(
    rng: random.Random,
) -> tuple[list[OrderLine], str, list[WarehouseInfo], dict[tuple[str, str], int]]:
    warehouses = []
    for index in range(rng.randint(1, 5)):
        home = rng.choice(list(COUNTRY_OF))
        lanes = {home, *rng.sample(list(COUNTRY_OF), rng.randint(0, 3))}
        warehouses.append(
            WarehouseInfo(
                code=f"WH-{index}",
                country=COUNTRY_OF[home],
                region=home,
                daily_capacity=rng.choice([None, 0, 1, 5]),
                shipping={
                    r: ShippingOption(cost=Decimal(rng.randint(1, 4)), days=rng.randint(1, 4)) for r in lanes
                },
            )
        )
    skus = rng.sample(["A", "B", "C", "D"], rng.randint(1, 4))
    lines = order_lines(*((sku, rng.randint(1, 4)) for sku in skus))
    stock = {(w.code, sku): rng.randint(0, 4) for w in warehouses for sku in skus if rng.random() < 0.6}
    stock[("WH-X", skus[0])] = rng.randint(0, 3)  # a warehouse the caller did not describe
    return lines, rng.choice(list(COUNTRY_OF.values())), warehouses, stock


def covers(lines: list[OrderLine], stock: dict[tuple[str, str], int], codes: tuple[str, ...]) -> bool:
    return all(sum(stock.get((c, line.sku), 0) for c in codes) >= line.quantity for line in lines)


def test_invariants_on_random_orders() -> None:
    rng = random.Random(20240611)
    outcomes = {"single": 0, "split": 0, "short": 0}
    for _ in range(3000):
        lines, destination, warehouses, stock = random_world(rng)
        shipped = {w.code: rng.randint(0, 2) for w in warehouses}
        rules = tuple(rng.sample(list(AllocationRule), rng.randint(0, 4)))
        plan = allocate(lines, destination, warehouses, stock, shipped, rules)
        region = region_of(destination)
        shippers = [w.code for w in warehouses if region in w.shipping]

        codes = [part.warehouse for part in plan.parts]
        assert len(codes) == len(set(codes))
        assert set(codes) <= set(shippers)
        assert all(part.lines for part in plan.parts)
        for part in plan.parts:
            for part_line in part.lines:
                assert part_line.quantity <= stock.get((part.warehouse, part_line.sku), 0)
                assert lines[part_line.line_no].sku == part_line.sku
        fewest = next(
            (
                size
                for size in range(1, len(shippers) + 1)
                for s in combinations(shippers, size)
                if covers(lines, stock, s)
            ),
            None,
        )
        if fewest is None:
            outcomes["short"] += 1
            assert not plan.complete
            assert plan.parts == []
            assert plan.shortages
            for shortage in plan.shortages:
                assert shortage.available == sum(stock.get((c, shortage.sku), 0) for c in shippers)
                assert shortage.available < shortage.requested
            assert plan.suggestions[-1].action == "cancel"
            continue
        outcomes["single" if fewest == 1 else "split"] += 1
        assert plan.complete
        assert len(plan.parts) == fewest
        shipped_units = [0] * len(lines)
        for part in plan.parts:
            for part_line in part.lines:
                shipped_units[part_line.line_no] += part_line.quantity
        assert shipped_units == [line.quantity for line in lines]
        shuffled = rng.sample(warehouses, len(warehouses))
        assert allocate(lines, destination, shuffled, dict(reversed(stock.items())), shipped, rules) == plan
    assert min(outcomes.values()) > 100, outcomes
