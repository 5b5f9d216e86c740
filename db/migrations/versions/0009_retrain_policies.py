"""retrain policies and what fired them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_retrain_policies",
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("cooldown_seconds", sa.Float(), nullable=False),
        sa.Column("max_per_day", sa.Integer(), nullable=False),
        sa.Column("window_seconds", sa.Float(), nullable=True),
        sa.Column("warm_start", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("cooldown_seconds >= 0", name="ck_policies_cooldown"),
        sa.CheckConstraint("max_per_day > 0", name="ck_policies_rate"),
        sa.PrimaryKeyConstraint("policy_id"),
        sa.UniqueConstraint("tenant_id", "model_name", name="uq_policies_model"),
    )
    op.create_table(
        "ai_retrain_triggers",
        sa.Column("trigger_id", sa.String(length=36), nullable=False),
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rule IN ('schedule', 'new_data', 'drift')", name="ck_triggers_rule"),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["ai_retrain_policies.policy_id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["ai_training_jobs.job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trigger_id"),
    )
    op.create_index("ix_triggers_policy", "ai_retrain_triggers", ["policy_id", "fired_at"])


def downgrade() -> None:
    op.drop_index("ix_triggers_policy", table_name="ai_retrain_triggers")
    op.drop_table("ai_retrain_triggers")
    op.drop_table("ai_retrain_policies")
