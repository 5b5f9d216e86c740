"""experiments outlive their jobs; model aliases

Experiments (with their metrics and parameters) are kept when the retention policy purges
their job: ``job_id`` becomes nullable with ``ON DELETE SET NULL``, and the experiment
carries its own ``tenant_id`` and ``model_name`` so it can still be found. Model aliases
(``champion``, ...) point a name at one registered version.

SQLite cannot alter a foreign key, so it rebuilds ``ai_experiments`` (the documented
twelve-step procedure) with foreign keys off; otherwise dropping the old table would
cascade to every metric and parameter row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EXPERIMENT_SUMMARY = """
CREATE VIEW experiment_summary AS
SELECT e.experiment_id, e.job_id, e.name, e.status, e.model_id, e.created_at, e.completed_at,
       e.tenant_id, j.model_type, e.model_name,
       (SELECT COUNT(*) FROM ai_experiment_metrics m
         WHERE m.experiment_id = e.experiment_id) AS metric_count,
       (SELECT COUNT(*) FROM ai_experiment_params p
         WHERE p.experiment_id = e.experiment_id) AS param_count
FROM ai_experiments e
LEFT JOIN ai_training_jobs j ON j.job_id = e.job_id
"""

EXPERIMENT_STATUS_CHECK = "status IN ('running', 'completed', 'pruned', 'failed', 'cancelled')"


def upgrade() -> None:
    op.execute("DROP VIEW experiment_summary")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_experiments_on_sqlite()
    else:
        _alter_experiments()
    op.create_index("ix_experiments_tenant_created", "ai_experiments", ["tenant_id", "created_at"])
    op.execute(EXPERIMENT_SUMMARY)

    op.create_table(
        "ai_model_aliases",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=300), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["ai_models.model_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "model_name", "alias"),
    )
    op.create_index("ix_aliases_model", "ai_model_aliases", ["model_id"])


def _alter_experiments() -> None:
    op.add_column("ai_experiments", sa.Column("tenant_id", sa.String(length=128)))
    op.add_column("ai_experiments", sa.Column("model_name", sa.String(length=128)))
    op.execute(
        "UPDATE ai_experiments e SET tenant_id = j.tenant_id, model_name = j.model_name "
        "FROM ai_training_jobs j WHERE j.job_id = e.job_id"
    )
    op.alter_column("ai_experiments", "tenant_id", nullable=False)
    op.alter_column("ai_experiments", "model_name", nullable=False)
    op.alter_column("ai_experiments", "job_id", nullable=True)
    op.drop_constraint("ai_experiments_job_id_fkey", "ai_experiments", type_="foreignkey")
    op.create_foreign_key(
        "fk_experiments_job",
        "ai_experiments",
        "ai_training_jobs",
        ["job_id"],
        ["job_id"],
        ondelete="SET NULL",
    )


def _rebuild_experiments_on_sqlite() -> None:
    bind = op.get_bind()
    op.execute("PRAGMA foreign_keys=OFF")
    enforced = bind.exec_driver_sql("PRAGMA foreign_keys").scalar()
    has_rows = bind.exec_driver_sql("SELECT 1 FROM ai_experiments LIMIT 1").first() is not None
    if enforced and has_rows:
        raise RuntimeError(
            "cannot turn SQLite foreign keys off inside a transaction; rebuilding "
            "ai_experiments now would delete every experiment metric"
        )
    op.create_table(
        "ai_experiments_new",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(EXPERIMENT_STATUS_CHECK, name="ck_experiments_status"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["ai_training_jobs.job_id"], name="fk_experiments_job", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.execute(
        "INSERT INTO ai_experiments_new (experiment_id, job_id, tenant_id, model_name, name, "
        "status, model_id, created_at, completed_at) "
        "SELECT e.experiment_id, e.job_id, j.tenant_id, j.model_name, e.name, e.status, "
        "e.model_id, e.created_at, e.completed_at "
        "FROM ai_experiments e JOIN ai_training_jobs j ON j.job_id = e.job_id"
    )
    op.drop_index("ix_experiments_job", table_name="ai_experiments")
    op.drop_table("ai_experiments")
    op.rename_table("ai_experiments_new", "ai_experiments")
    op.create_index("ix_experiments_job", "ai_experiments", ["job_id"])
    op.execute("PRAGMA foreign_keys=ON")


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: purged jobs' experiments have no job")
