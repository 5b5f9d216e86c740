"""monitoring of served forecasts and promotions on the same evidence

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_batch_forecasts") as table:
        table.add_column(
            sa.Column("source", sa.String(length=8), nullable=False, server_default="batch")
        )
        table.create_check_constraint("ck_forecasts_source", "source IN ('batch', 'predict')")
    op.create_index(
        "ix_forecasts_model_status", "ai_batch_forecasts", ["model_id", "status", "created_at"]
    )
    op.create_table(
        "ai_monitor_evaluations",
        sa.Column("forecast_id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.String(length=300), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("feature_set", sa.String(length=128), nullable=False),
        sa.Column("feature_set_version", sa.String(length=128), nullable=False),
        sa.Column("origin", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forecast_rows", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("by_lead", sa.JSON(), nullable=False),
        sa.Column("by_series", sa.JSON(), nullable=False),
        sa.Column("health", sa.JSON(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rows >= 0", name="ck_evaluations_rows"),
        sa.ForeignKeyConstraint(["model_id"], ["ai_models.model_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("forecast_id"),
    )
    op.create_index("ix_evaluations_model_origin", "ai_monitor_evaluations", ["model_id", "origin"])
    op.create_table(
        "ai_promotions",
        sa.Column("promotion_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("challenger_id", sa.String(length=300), nullable=False),
        sa.Column("champion_id", sa.String(length=300), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('promoted', 'kept', 'rolled_back')", name="ck_promotions_decision"
        ),
        sa.PrimaryKeyConstraint("promotion_id"),
    )
    op.create_index(
        "ix_promotions_model", "ai_promotions", ["tenant_id", "model_name", "decided_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_promotions_model", table_name="ai_promotions")
    op.drop_table("ai_promotions")
    op.drop_index("ix_evaluations_model_origin", table_name="ai_monitor_evaluations")
    op.drop_table("ai_monitor_evaluations")
    op.drop_index("ix_forecasts_model_status", table_name="ai_batch_forecasts")
    with op.batch_alter_table("ai_batch_forecasts") as table:
        table.drop_constraint("ck_forecasts_source", type_="check")
        table.drop_column("source")
