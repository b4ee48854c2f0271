"""How many calls a shop refused since it last became unhealthy (issue #10): GET /shops/{shop_id}.

A seller who fixes a shop sees how much it missed; the refused fulfilments and cancellations go out
again by themselves once it is fixed (workflows/shop_calls.py). Shops from before count from 0.

Revision ID: 0010_shop_refused_calls
Revises: 0009_order_keys_by_shop
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_shop_refused_calls"
down_revision: str | None = "0009_order_keys_by_shop"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("shops")}
    if "refused_calls" in existing:  # made by create_all with today's models, then stamped
        return
    with op.batch_alter_table("shops") as batch:
        batch.add_column(sa.Column("refused_calls", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.drop_column("refused_calls")
