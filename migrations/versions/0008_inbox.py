"""Inbound webhooks (issue 10): the inbox of verified deliveries, the store's updated_at last applied
per channel order, and per shop the deliveries refused for their signature.

Revision ID: 0008_inbox
Revises: 0007_shops
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_inbox"
down_revision: str | None = "0007_shops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "inbox" not in present:
        op.create_table(
            "inbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("source", sa.String(length=16), nullable=False),
            sa.Column("shop_id", sa.String(length=64), nullable=False),
            sa.Column("delivery_id", sa.String(length=255), nullable=False),
            sa.Column("event_id", sa.String(length=255), nullable=True),
            sa.Column("topic", sa.String(length=64), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("headers", sa.JSON(), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.String(length=500), nullable=True),
            sa.Column("channel_order_id", sa.String(length=100), nullable=True),
            sa.Column("order_id", sa.String(length=40), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("source", "delivery_id", name="uq_inbox_delivery"),
        )
        op.create_index("ix_inbox_shop_id", "inbox", ["shop_id"])
        op.create_index("ix_inbox_received_at", "inbox", ["received_at"])
        op.create_index("ix_inbox_status", "inbox", ["status"])
    if "channel_order_marks" not in present:
        op.create_table(
            "channel_order_marks",
            sa.Column("shop_id", sa.String(length=64), nullable=False),
            sa.Column("channel_order_id", sa.String(length=100), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("shop_id", "channel_order_id"),
        )
    if "webhook_rejections" not in present:
        op.create_table(
            "webhook_rejections",
            sa.Column("shop_id", sa.String(length=64), nullable=False),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_reason", sa.String(length=500), nullable=False),
            sa.PrimaryKeyConstraint("shop_id"),
        )


def downgrade() -> None:
    op.drop_table("webhook_rejections")
    op.drop_table("channel_order_marks")
    op.drop_index("ix_inbox_status", table_name="inbox")
    op.drop_index("ix_inbox_received_at", table_name="inbox")
    op.drop_index("ix_inbox_shop_id", table_name="inbox")
    op.drop_table("inbox")
