"""Every value the API accepts fits its column (issue #8).

- orders.warehouse VARCHAR(200) -> TEXT: an order split across N warehouses records all N codes
  ("WH-A+WH-B+..."), and N has no upper bound (100 lines across 100 warehouses of 32-character codes
  is already 3299 characters).
- refunds.refund_id 120 -> 160: "<order_id>:<payment_id>" is up to 40 + 1 + 100 characters. The
  format stays, so a refund recorded before this revision keeps its id and a retry still finds it.
- refunds.reason 200 -> 500: an operator's cancel reason may be 500 characters (domain.operator).
- orders.exception_reason and order_events.kind 40 -> 64: room for reasons such as
  "cancel_shipment_request_failed" and the event kinds still to come.

Only widening: on PostgreSQL each change is catalog-only (no table rewrite); on SQLite batch mode
copies the table, as in 0002.

Revision ID: 0003_values_fit_their_columns
Revises: 0002_wider_kind_and_warehouse
Create Date: 2025-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_values_fit_their_columns"
down_revision: str | None = "0002_wider_kind_and_warehouse"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "warehouse", existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=True
        )
        batch.alter_column(
            "exception_reason",
            existing_type=sa.String(length=40),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    with op.batch_alter_table("order_events") as batch:
        batch.alter_column(
            "kind", existing_type=sa.String(length=40), type_=sa.String(length=64), existing_nullable=False
        )
    with op.batch_alter_table("refunds") as batch:
        batch.alter_column(
            "refund_id",
            existing_type=sa.String(length=120),
            type_=sa.String(length=160),
            existing_nullable=False,
        )
        batch.alter_column(
            "reason",
            existing_type=sa.String(length=200),
            type_=sa.String(length=500),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Fails on PostgreSQL while a longer value is stored: shorten or delete those rows first.
    with op.batch_alter_table("refunds") as batch:
        batch.alter_column(
            "reason",
            existing_type=sa.String(length=500),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
        batch.alter_column(
            "refund_id",
            existing_type=sa.String(length=160),
            type_=sa.String(length=120),
            existing_nullable=False,
        )
    with op.batch_alter_table("order_events") as batch:
        batch.alter_column(
            "kind", existing_type=sa.String(length=64), type_=sa.String(length=40), existing_nullable=False
        )
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "exception_reason",
            existing_type=sa.String(length=64),
            type_=sa.String(length=40),
            existing_nullable=True,
        )
        batch.alter_column(
            "warehouse", existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=True
        )
