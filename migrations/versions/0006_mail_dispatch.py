"""The mail dispatcher's columns on the outbox (issue #9): claims, failed attempts, giving up, HTML.

Mail written while SMTP was unset, or that failed every retry of its order, is sent later by the
mail dispatcher (workflows/mail.py). A sender claims a row (claimed_until, claimed_by) before
sending it, so the dispatcher and an order's own retry never both send it; failed sends are counted
with their last error; a row unsent past ORDERS_MAIL_GIVE_UP_AFTER is marked given_up_at. body_html
keeps the HTML part so a later send is the same message; rows written before this revision have none
and go out as plain text.

Revision ID: 0006_mail_dispatch
Revises: 0005_stock_index
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_mail_dispatch"
down_revision: str | None = "0005_stock_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def columns() -> list[sa.Column[object]]:
    return [
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("notifications")}
    with op.batch_alter_table("notifications") as batch:
        for column in columns():
            if column.name not in existing:  # made by create_all with today's models, then stamped
                batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        for column in reversed(columns()):
            batch.drop_column(column.name)
