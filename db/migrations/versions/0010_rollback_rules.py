"""automatic rollback: a policy's rollback rule and the previous champion's shadow scores

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_retrain_policies") as table:
        table.add_column(sa.Column("rollback", sa.JSON(), nullable=True))
    with op.batch_alter_table("ai_monitor_evaluations") as table:
        table.add_column(sa.Column("shadow_promotion_id", sa.String(length=36), nullable=True))
        table.add_column(sa.Column("shadow", sa.JSON(), nullable=True))
    op.create_index(
        "ix_evaluations_shadow", "ai_monitor_evaluations", ["shadow_promotion_id", "origin"]
    )


def downgrade() -> None:
    op.drop_index("ix_evaluations_shadow", table_name="ai_monitor_evaluations")
    with op.batch_alter_table("ai_monitor_evaluations") as table:
        table.drop_column("shadow")
        table.drop_column("shadow_promotion_id")
    with op.batch_alter_table("ai_retrain_policies") as table:
        table.drop_column("rollback")
