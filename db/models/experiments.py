"""The tracking tables: an experiment per run (a job's, or each of its search trials), its
parameters and its metrics by step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import AutoIncrementId, Base, UtcDateTime, one_of
from domain.clock import utcnow
from domain.jobs import ExperimentStatus


class Experiment(Base):
    """A run's record; it outlives its job (``job_id`` is cleared when retention purges it)."""

    __tablename__ = "ai_experiments"

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(
        String(36),
        ForeignKey("ai_training_jobs.job_id", ondelete="SET NULL", name="fk_experiments_job"),
    )
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ExperimentStatus.RUNNING.value)
    model_id: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(one_of("status", ExperimentStatus), name="ck_experiments_status"),
        Index("ix_experiments_job", "job_id"),
        Index("ix_experiments_tenant_created", "tenant_id", "created_at"),
    )


class ExperimentMetric(Base):
    __tablename__ = "ai_experiment_metrics"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_experiments.experiment_id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer, default=0)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("step >= 0", name="ck_metrics_step"),
        Index("ix_metrics_experiment_name_step", "experiment_id", "name", "step"),
    )


class ExperimentParam(Base):
    __tablename__ = "ai_experiment_params"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_experiments.experiment_id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(Text)
    value_type: Mapped[str] = mapped_column(String(8))

    __table_args__ = (
        UniqueConstraint("experiment_id", "name", name="uq_params_experiment_name"),
        CheckConstraint(
            "value_type IN ('int', 'float', 'str', 'bool', 'json')", name="ck_params_value_type"
        ),
    )
