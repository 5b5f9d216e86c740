"""detection jobs: a stored forecast's kind, its window and its events

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_batch_forecasts") as table:
        table.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="forecast")
        )
        table.add_column(sa.Column("window_start", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("window_end", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("events", sa.Integer(), nullable=True))
        table.create_check_constraint("ck_forecasts_kind", "kind IN ('forecast', 'detection')")
    op.create_index(
        "ix_forecasts_kind_tenant_created",
        "ai_batch_forecasts",
        ["kind", "tenant_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_forecasts_kind_tenant_created", table_name="ai_batch_forecasts")
    with op.batch_alter_table("ai_batch_forecasts") as table:
        table.drop_constraint("ck_forecasts_kind", type_="check")
        table.drop_column("events")
        table.drop_column("window_end")
        table.drop_column("window_start")
        table.drop_column("kind")
