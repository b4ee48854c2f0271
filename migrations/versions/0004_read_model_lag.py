"""Orders whose read-model row is behind (issue #8): a projection that failed leaves a row here.

/orders/stuck lists them and the API's gauge counts them until the workflow's next projection
succeeds and deletes the row.

Revision ID: 0004_read_model_lag
Revises: 0003_values_fit_their_columns
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_read_model_lag"
down_revision: str | None = "0003_values_fit_their_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "read_model_lag" in sa.inspect(op.get_bind()).get_table_names():
        return  # made by create_all with today's models, then stamped (services.migrate)
    op.create_table(
        "read_model_lag",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )


def downgrade() -> None:
    op.drop_table("read_model_lag")
