"""create training tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ACTIVE_TRAINING_JOBS = """
CREATE VIEW active_training_jobs AS
SELECT job_id, tenant_id, model_type, model_name, feature_set, status, priority, progress,
       stage, created_at, started_at, updated_at
FROM ai_training_jobs
WHERE status IN ('queued', 'running')
"""

EXPERIMENT_SUMMARY = """
CREATE VIEW experiment_summary AS
SELECT e.experiment_id, e.job_id, e.name, e.status, e.model_id, e.created_at, e.completed_at,
       j.tenant_id, j.model_type, j.model_name,
       (SELECT COUNT(*) FROM ai_experiment_metrics m
         WHERE m.experiment_id = e.experiment_id) AS metric_count,
       (SELECT COUNT(*) FROM ai_experiment_params p
         WHERE p.experiment_id = e.experiment_id) AS param_count
FROM ai_experiments e
JOIN ai_training_jobs j ON j.job_id = e.job_id
"""


def upgrade() -> None:
    op.create_table(
        "ai_training_jobs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_type", sa.String(length=16), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("feature_set", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("model_id", sa.String(length=300), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_of", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("schedule_cron", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("model_type IN ('forecast', 'anomaly')", name="ck_jobs_model_type"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name="ck_jobs_status",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_jobs_attempts"),
        sa.CheckConstraint("priority BETWEEN -1 AND 2", name="ck_jobs_priority"),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="ck_jobs_progress"),
        sa.ForeignKeyConstraint(["retry_of"], ["ai_training_jobs.job_id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_jobs_created", "ai_training_jobs", ["created_at"])
    op.create_index("ix_jobs_model", "ai_training_jobs", ["model_type", "model_name"])
    op.create_index("ix_jobs_queue", "ai_training_jobs", ["status", "priority", "created_at"])
    op.create_index(
        "ix_jobs_tenant_status", "ai_training_jobs", ["tenant_id", "status", "created_at"]
    )

    op.create_table(
        "ai_experiments",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'pruned', 'failed', 'cancelled')",
            name="ck_experiments_status",
        ),
        sa.ForeignKeyConstraint(["job_id"], ["ai_training_jobs.job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.create_index("ix_experiments_job", "ai_experiments", ["job_id"])

    op.create_table(
        "ai_training_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')", name="ck_logs_level"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["ai_training_jobs.job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_logs_job", "ai_training_logs", ["job_id", "id"])
    op.create_index("ix_logs_timestamp", "ai_training_logs", ["timestamp"])

    op.create_table(
        "ai_experiment_metrics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("step >= 0", name="ck_metrics_step"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["ai_experiments.experiment_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_metrics_experiment_name_step",
        "ai_experiment_metrics",
        ["experiment_id", "name", "step"],
    )

    op.create_table(
        "ai_experiment_params",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_type", sa.String(length=8), nullable=False),
        sa.CheckConstraint(
            "value_type IN ('int', 'float', 'str', 'bool', 'json')", name="ck_params_value_type"
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["ai_experiments.experiment_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "name", name="uq_params_experiment_name"),
    )
    op.create_table(
        "ai_models",
        sa.Column("model_id", sa.String(length=300), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_type", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("experiment_id", sa.String(length=36), nullable=True),
        sa.Column("feature_set", sa.String(length=128), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("model_type IN ('forecast', 'anomaly')", name="ck_models_model_type"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["ai_experiments.experiment_id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["ai_training_jobs.job_id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("model_id"),
        sa.UniqueConstraint("tenant_id", "model_name", "version", name="uq_models_version"),
    )
    op.create_index("ix_models_job", "ai_models", ["job_id"])
    op.create_index("ix_models_tenant_name", "ai_models", ["tenant_id", "model_name"])

    op.execute(ACTIVE_TRAINING_JOBS)
    op.execute(EXPERIMENT_SUMMARY)


def downgrade() -> None:
    op.execute("DROP VIEW experiment_summary")
    op.execute("DROP VIEW active_training_jobs")
    op.drop_index("ix_models_tenant_name", table_name="ai_models")
    op.drop_index("ix_models_job", table_name="ai_models")

    op.drop_table("ai_models")
    op.drop_table("ai_experiment_params")
    op.drop_index("ix_metrics_experiment_name_step", table_name="ai_experiment_metrics")

    op.drop_table("ai_experiment_metrics")
    op.drop_index("ix_logs_timestamp", table_name="ai_training_logs")
    op.drop_index("ix_logs_job", table_name="ai_training_logs")

    op.drop_table("ai_training_logs")
    op.drop_index("ix_experiments_job", table_name="ai_experiments")

    op.drop_table("ai_experiments")
    op.drop_index("ix_jobs_tenant_status", table_name="ai_training_jobs")
    op.drop_index("ix_jobs_queue", table_name="ai_training_jobs")
    op.drop_index("ix_jobs_model", table_name="ai_training_jobs")
    op.drop_index("ix_jobs_created", table_name="ai_training_jobs")

    op.drop_table("ai_training_jobs")
