"""A stock count as PUT /inventory and each row of a CSV import accept it: one model for both edges."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from domain.identifiers import MAX_STOCK_COUNT, Sku, WarehouseCode, whole_number
from domain.models import Model

StockCount = Annotated[int, BeforeValidator(whole_number), Field(ge=0, le=MAX_STOCK_COUNT)]


class SetStock(Model):
    """The counted quantity on hand, and the safety stock (kept as it was when omitted)."""

    on_hand: StockCount
    safety_stock: StockCount | None = None


class StockRow(SetStock):
    """One row of a stock CSV: where, which SKU, and its counts (cells are text: "12", not "12.0")."""

    warehouse: WarehouseCode
    sku: Sku
