"""Shops and their encrypted secrets (issue 10); orders carry the shop they came from.

New tables: shops (a seller's store on a channel), shop_secrets (each credential Fernet-encrypted,
with the previous webhook secret kept for its grace period) and secret_canary (proves at start-up that
ORDERS_SECRET_KEY decrypts this database's secrets). orders and order_keys get a nullable shop_id,
backfilled with the channel's default shop ("shopify-default"), which is created here for every
channel that has orders: orders placed before shops existed belong to it.

Revision ID: 0007_shops
Revises: 0006_mail_dispatch
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0007_shops"
down_revision: str | None = "0006_mail_dispatch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Channel names as shown to people, at this revision (domain.models.Channel).
TITLES = {
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "amazon": "Amazon",
    "ebay": "eBay",
    "shopee": "Shopee",
    "aliexpress": "AliExpress",
}


def _create_tables(present: set[str]) -> None:
    if "shops" not in present:
        op.create_table(
            "shops",
            sa.Column("shop_id", sa.String(length=64), nullable=False),
            sa.Column("channel", sa.String(length=32), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("url", sa.String(length=255), nullable=True),
            sa.Column("currency", sa.String(length=3), nullable=True),
            sa.Column("language", sa.String(length=16), nullable=True),
            sa.Column("stripe_account_id", sa.String(length=105), nullable=True),
            sa.Column("authorized_counts_as_paid", sa.Boolean(), nullable=False),
            sa.Column("stock_buffer", sa.Integer(), nullable=False),
            sa.Column("healthy", sa.Boolean(), nullable=False),
            sa.Column("last_error", sa.String(length=500), nullable=True),
            sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("shop_id"),
        )
        op.create_index("ix_shops_channel", "shops", ["channel"])
        op.create_index("ix_shops_stripe_account_id", "shops", ["stripe_account_id"])
    if "shop_secrets" not in present:
        op.create_table(
            "shop_secrets",
            sa.Column("shop_id", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=32), nullable=False),
            sa.Column("ciphertext", sa.Text(), nullable=False),
            sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("previous_ciphertext", sa.Text(), nullable=True),
            sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("shop_id", "name"),
        )
    if "secret_canary" not in present:
        op.create_table(
            "secret_canary",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("ciphertext", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    _create_tables(set(inspector.get_table_names()))
    for table in ("orders", "order_keys"):
        if "shop_id" in {column["name"] for column in inspector.get_columns(table)}:
            continue  # made by create_all with today's models, then stamped (services.migrate)
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("shop_id", sa.String(length=64), nullable=True))
            if table == "orders":
                batch.create_index("ix_orders_shop_id", ["shop_id"])
    for table in ("orders", "order_keys"):
        bind.execute(sa.text(f"UPDATE {table} SET shop_id = channel || '-default' WHERE shop_id IS NULL"))

    channels = bind.execute(
        sa.text("SELECT channel FROM orders UNION SELECT channel FROM order_keys")
    ).scalars()
    existing = set(bind.execute(sa.text("SELECT shop_id FROM shops")).scalars())
    now = datetime.now(UTC)
    shops = sa.table(
        "shops",
        *(sa.column(name) for name in ("shop_id", "channel", "name", "authorized_counts_as_paid")),
        *(sa.column(name) for name in ("stock_buffer", "healthy", "created_at", "updated_at")),
    )
    for channel in sorted(set(channels)):
        shop_id = f"{channel}-default"
        if shop_id in existing:
            continue
        title = TITLES.get(channel, channel)
        bind.execute(
            shops.insert().values(
                shop_id=shop_id,
                channel=channel,
                name=f"{title} (orders before shops)"[:100],
                authorized_counts_as_paid=False,
                stock_buffer=0,
                healthy=True,
                created_at=now,
                updated_at=now,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("order_keys") as batch:
        batch.drop_column("shop_id")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_shop_id")
        batch.drop_column("shop_id")
    op.drop_table("secret_canary")
    op.drop_table("shop_secrets")
    op.drop_index("ix_shops_stripe_account_id", table_name="shops")
    op.drop_index("ix_shops_channel", table_name="shops")
    op.drop_table("shops")
