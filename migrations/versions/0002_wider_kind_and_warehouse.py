"""Wider notifications.kind (40 -> 80) and orders.warehouse (32 -> 200).

A parcel's notification kind names its warehouse (``order_shipped:<warehouse>``), and an order split
across warehouses records them all (``WH-A+WH-B``). On SQLite batch mode copies each table (SQLite
cannot change a column's type in place); on PostgreSQL widening a VARCHAR is a catalog-only change.

Revision ID: 0002_wider_kind_and_warehouse
Revises: 0001_initial
Create Date: 2025-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_wider_kind_and_warehouse"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column(
            "kind", existing_type=sa.String(length=40), type_=sa.String(length=80), existing_nullable=False
        )
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "warehouse",
            existing_type=sa.String(length=32),
            type_=sa.String(length=200),
            existing_nullable=True,
        )


def downgrade() -> None:
    # Fails on PostgreSQL while a longer value is stored: shorten or delete those rows first.
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "warehouse",
            existing_type=sa.String(length=200),
            type_=sa.String(length=32),
            existing_nullable=True,
        )
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column(
            "kind", existing_type=sa.String(length=80), type_=sa.String(length=40), existing_nullable=False
        )
