"""The jobs' tables: each training job (its config, status and progress), its log lines,
and the idempotency keys that map a client's retried request (or a schedule's fire) to
the job it created."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import AutoIncrementId, Base, UtcDateTime, one_of
from domain.clock import utcnow
from domain.jobs import JobStatus, LogLevel, ModelType


class TrainingJob(Base):
    __tablename__ = "ai_training_jobs"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_type: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(128))
    feature_set: Mapped[str] = mapped_column(String(128))
    #: The version of the feature set the job read (None until it has read it).
    feature_set_version: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_id: Mapped[str | None] = mapped_column(String(300))
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_of: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("ai_training_jobs.job_id", ondelete="SET NULL")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    schedule_cron: Mapped[str | None] = mapped_column(String(128))
    schedule_id: Mapped[str | None] = mapped_column(String(36))
    fire_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(one_of("status", JobStatus), name="ck_jobs_status"),
        CheckConstraint(one_of("model_type", ModelType), name="ck_jobs_model_type"),
        CheckConstraint("priority BETWEEN -1 AND 2", name="ck_jobs_priority"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="ck_jobs_progress"),
        CheckConstraint("attempts >= 0", name="ck_jobs_attempts"),
        Index("ix_jobs_tenant_status", "tenant_id", "status", "created_at"),
        Index("ix_jobs_model", "model_type", "model_name"),
        Index("ix_jobs_queue", "status", "priority", "created_at"),
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_schedule", "schedule_id", "created_at"),
    )
    # Every ORM update of a job says "WHERE status = <the status it read>", so a concurrent
    # transition is detected (StaleDataError) even where SELECT ... FOR UPDATE is a no-op
    # (SQLite), instead of being overwritten.
    __mapper_args__ = {  # noqa: RUF012 (SQLAlchemy reads it once, at mapping)
        "version_id_col": status,
        "version_id_generator": False,
    }


class TrainingLog(Base):
    __tablename__ = "ai_training_logs"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_training_jobs.job_id", ondelete="CASCADE")
    )
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(8))
    stage: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)

    __table_args__ = (
        CheckConstraint(one_of("level", LogLevel), name="ck_logs_level"),
        Index("ix_logs_job", "job_id", "id"),
        Index("ix_logs_timestamp", "timestamp"),
    )


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` (or a schedule fire) and the job it created."""

    __tablename__ = "ai_idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_training_jobs.job_id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_idempotency_created", "created_at"),)
