"""One definition of "awaiting shipment" for the read model, the Web UI's ShipBy and the README's query."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from domain.models import OrderStatus
from domain.stages import AWAITING_SHIPMENT, awaits_shipment

ROOT = Path(__file__).parents[2]

# Every status, said out loud: a new status fails here until someone decides.
EXPECTED = {
    OrderStatus.PENDING_PAYMENT: False,  # not paid: the ship-by clock has not started
    OrderStatus.PAID: True,
    OrderStatus.STOCK_LOCKED: True,
    OrderStatus.PARTIALLY_SHIPPED: True,  # some parcels still to leave, late ones too
    OrderStatus.SHIPPED: False,
    OrderStatus.IN_TRANSIT: False,
    OrderStatus.DELIVERED: False,
    OrderStatus.COMPLETED: False,
    OrderStatus.CANCELLED: False,
    OrderStatus.EXCEPTION: True,  # whatever went wrong still stands between it and shipping
}


def test_every_status_is_decided() -> None:
    assert set(EXPECTED) == set(OrderStatus)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_whether_a_status_awaits_shipment(status: OrderStatus) -> None:
    assert awaits_shipment(status) is EXPECTED[status]
    assert (status in AWAITING_SHIPMENT) is EXPECTED[status]


def test_the_readme_ship_by_query_relies_on_ship_by_alone() -> None:
    """ShipBy is set exactly while an order awaits shipment, so the README's query needs no status
    list that could drift from AWAITING_SHIPMENT (one did, and missed late partial shipments)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [row] = [line for line in readme.splitlines() if "past their ship-by time" in line]
    query = re.findall(r"`([^`]*)`", row)[0]
    assert query.startswith("ShipBy < ")
    statuses = set(re.findall(r'"([a-z_]+)"', query))
    assert not statuses or statuses == {s.value for s in AWAITING_SHIPMENT}
