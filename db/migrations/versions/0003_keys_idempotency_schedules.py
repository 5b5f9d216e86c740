"""api keys, idempotency keys, cron schedules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_api_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'member', 'admin')", name="ck_keys_role"),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("ix_keys_tenant", "ai_api_keys", ["tenant_id"])

    op.create_table(
        "ai_schedules",
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.Column("window_seconds", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("concurrency_policy", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("concurrency_policy IN ('forbid', 'allow')", name="ck_schedules_policy"),
        sa.CheckConstraint("window_seconds > 0", name="ck_schedules_window"),
        sa.PrimaryKeyConstraint("schedule_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_schedules_name"),
    )

    op.add_column("ai_training_jobs", sa.Column("schedule_id", sa.String(length=36)))
    op.add_column("ai_training_jobs", sa.Column("fire_time", sa.DateTime(timezone=True)))
    op.create_index("ix_jobs_schedule", "ai_training_jobs", ["schedule_id", "created_at"])

    op.create_table(
        "ai_idempotency_keys",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["ai_training_jobs.job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    op.create_index("ix_idempotency_created", "ai_idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_created", table_name="ai_idempotency_keys")
    op.drop_table("ai_idempotency_keys")
    op.drop_index("ix_jobs_schedule", table_name="ai_training_jobs")
    with op.batch_alter_table("ai_training_jobs") as batch:
        batch.drop_column("fire_time")
        batch.drop_column("schedule_id")
    op.drop_table("ai_schedules")
    op.drop_index("ix_keys_tenant", table_name="ai_api_keys")
    op.drop_table("ai_api_keys")
