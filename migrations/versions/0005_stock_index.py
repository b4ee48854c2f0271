"""An index on stock.sku: every lookup by SKU (allocation, sellable units, restock, a CSV import's
spelling check) scanned the whole table, whose primary key (warehouse, sku) starts with the warehouse.

Revision ID: 0005_stock_index
Revises: 0004_read_model_lag
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_stock_index"
down_revision: str | None = "0004_read_model_lag"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    indexes = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("stock")}
    if "ix_stock_sku" in indexes:
        return  # made by create_all with today's models, then stamped (services.migrate)
    op.create_index("ix_stock_sku", "stock", ["sku"])


def downgrade() -> None:
    op.drop_index("ix_stock_sku", table_name="stock")
