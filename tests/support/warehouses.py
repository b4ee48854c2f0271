"""Registered warehouses for tests: stock is only taken for a warehouse someone described."""

from __future__ import annotations

from typing import Any

from domain.regions import Region

# Ships to every region at no cost, like the unregistered warehouses tests used to stock.
EVERYWHERE: dict[str, Any] = {
    "name": "Shenzhen",
    "country": "CN",
    "shipping": {region.value: {"cost": "0", "days": 0} for region in Region},
}
