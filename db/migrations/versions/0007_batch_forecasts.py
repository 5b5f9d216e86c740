"""batch forecasts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_batch_forecasts",
        sa.Column("forecast_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_id", sa.String(length=300), nullable=False),
        sa.Column("feature_set", sa.String(length=128), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("series", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed')", name="ck_forecasts_status"
        ),
        sa.CheckConstraint("horizon > 0", name="ck_forecasts_horizon"),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="ck_forecasts_progress"),
        sa.ForeignKeyConstraint(["model_id"], ["ai_models.model_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("forecast_id"),
    )
    op.create_index(
        "ix_forecasts_tenant_created", "ai_batch_forecasts", ["tenant_id", "created_at"]
    )
    op.create_index("ix_forecasts_status", "ai_batch_forecasts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_forecasts_status", table_name="ai_batch_forecasts")
    op.drop_index("ix_forecasts_tenant_created", table_name="ai_batch_forecasts")
    op.drop_table("ai_batch_forecasts")
