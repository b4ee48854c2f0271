"""An order is one per shop: order_keys' primary key becomes (shop_id, channel, channel_order_id).

The same WooCommerce order number in two shops is two orders; within one shop it stays one. shop_id
becomes NOT NULL: rows from before shops already carry their channel's default shop (0007 backfilled
it, and this revision fills any row written without one since). PostgreSQL swaps the key in place;
SQLite cannot alter a primary key, so the table is rebuilt (Alembic batch mode) with its rows.

Revision ID: 0009_order_keys_by_shop
Revises: 0008_inbox
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_order_keys_by_shop"
down_revision: str | None = "0008_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BY_SHOP = ["shop_id", "channel", "channel_order_id"]
BY_CHANNEL = ["channel", "channel_order_id"]


def _order_keys(key: list[str]) -> sa.Table:
    """order_keys as it is with `key` as its primary key (for SQLite's rebuild)."""
    return sa.Table(
        "order_keys",
        sa.MetaData(),
        sa.Column("shop_id", sa.String(length=64), nullable="shop_id" not in key),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("channel_order_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*key),
        sa.UniqueConstraint("order_id"),
    )


def _rekey(new: list[str]) -> None:
    bind = op.get_bind()
    if sa.inspect(bind).get_pk_constraint("order_keys")["constrained_columns"] == new:
        return  # made by create_all with today's models, then stamped (services.migrate)
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("order_keys", copy_from=_order_keys(new), recreate="always"):
            pass
        return
    name = sa.inspect(bind).get_pk_constraint("order_keys")["name"] or "order_keys_pkey"
    op.drop_constraint(name, "order_keys", type_="primary")
    op.alter_column(
        "order_keys", "shop_id", existing_type=sa.String(length=64), nullable="shop_id" not in new
    )
    op.create_primary_key("order_keys_pkey", "order_keys", new)


def upgrade() -> None:
    op.get_bind().execute(
        sa.text("UPDATE order_keys SET shop_id = channel || '-default' WHERE shop_id IS NULL")
    )
    _rekey(BY_SHOP)


def downgrade() -> None:
    # Fails (unique violation) if one order number is used in two shops: those are two orders now.
    _rekey(BY_CHANNEL)
