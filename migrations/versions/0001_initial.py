"""Every table as services/tables.py defined it when migrations were introduced.

This is exactly what ``SQLModel.metadata.create_all`` used to create: the same types, lengths and
nullability, the same unnamed primary keys and unique constraints (so PostgreSQL gives them the same
generated names, e.g. ``order_keys_order_id_key``), the same named CHECK constraints and ``ix_*``
indexes. That is what lets services.migrate stamp a database made by create_all at this revision.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-21
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _money(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Numeric(precision=16, scale=4), nullable=False)


def upgrade() -> None:
    # (channel, channel_order_id) -> order_id
    op.create_table(
        "order_keys",
        sa.Column("channel", sa.String(length=32), primary_key=True),
        sa.Column("channel_order_id", sa.String(length=100), primary_key=True),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("order_id"),
    )

    op.create_table(
        "stock",
        sa.Column("warehouse", sa.String(length=32), primary_key=True),
        sa.Column("sku", sa.String(length=64), primary_key=True),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.CheckConstraint("locked >= 0 AND reserved >= 0 AND safety_stock >= 0", name="ck_stock_pos"),
        sa.CheckConstraint("on_hand >= locked + reserved", name="ck_stock_no_oversell"),
    )

    # The stock ledger; a retried move hits the unique constraint.
    op.create_table(
        "stock_moves",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("order_id", "line_no", "warehouse", "kind", "generation"),
    )
    op.create_index("ix_stock_moves_order_id", "stock_moves", ["order_id"])

    op.create_table(
        "stock_allocations",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        _ts("created_at"),
    )

    op.create_table(
        "warehouses",
        sa.Column("code", sa.String(length=32), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=True),
        sa.Column("shipping", sa.JSON(), nullable=False),
        _ts("updated_at"),
    )

    op.create_table(
        "low_stock_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        _ts("at"),
        _ts("resolved_at", nullable=True),
    )
    op.create_index("ix_low_stock_events_warehouse", "low_stock_events", ["warehouse"])
    op.create_index("ix_low_stock_events_sku", "low_stock_events", ["sku"])

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(length=100), primary_key=True),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        _money("amount"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=50), nullable=False),
        _ts("recorded_at"),
    )
    op.create_index("ix_payments_order_id", "payments", ["order_id"])

    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.String(length=120), primary_key=True),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=100), nullable=False),
        _money("amount"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("created_at"),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"])

    op.create_table(
        "shipment_requests",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("warehouse", sa.String(length=32), primary_key=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        _ts("ship_by"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("requested_at"),
    )

    # Outbox of customer messages.
    op.create_table(
        "notifications",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("kind", sa.String(length=40), primary_key=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.String(), nullable=False),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
    )

    # Read model: one row per order.
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("channel_order_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _money("total"),
        sa.Column("warehouse", sa.String(length=32), nullable=True),
        sa.Column("exception_reason", sa.String(length=40), nullable=True),
        sa.Column("on_hold", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("status_since", nullable=True),
        _ts("held_since", nullable=True),
        _ts("payment_due_at", nullable=True),
        _ts("ship_by", nullable=True),
        _ts("confirm_by", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("view", sa.JSON(), nullable=False),
    )
    op.create_index("ix_orders_channel", "orders", ["channel"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_country", "orders", ["country"])
    op.create_index("ix_orders_on_hold", "orders", ["on_hold"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])

    # The order timeline.
    op.create_table(
        "order_events",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        _ts("at"),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
    )

    op.create_table(
        "audit_log",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("action_id", sa.String(length=100), primary_key=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        _ts("at"),
    )
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])

    # API keys, stored as a SHA-256 of their secret part.
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=16), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints too.
    for table in (
        "api_keys",
        "audit_log",
        "order_events",
        "orders",
        "notifications",
        "shipment_requests",
        "refunds",
        "payments",
        "low_stock_events",
        "warehouses",
        "stock_allocations",
        "stock_moves",
        "stock",
        "order_keys",
    ):
        op.drop_table(table)
