"""The tables of what starts jobs without a request: cron schedules, and retrain policies
with the retrains they triggered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, UtcDateTime
from domain.clock import utcnow


class Schedule(Base):
    """A cron schedule that starts a job at each fire time."""

    __tablename__ = "ai_schedules"

    schedule_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    job: Mapped[dict[str, Any]] = mapped_column(JSON)
    window_seconds: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean)
    concurrency_policy: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_fire_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("concurrency_policy IN ('forbid', 'allow')", name="ck_schedules_policy"),
        CheckConstraint("window_seconds > 0", name="ck_schedules_window"),
        UniqueConstraint("tenant_id", "name", name="uq_schedules_name"),
    )


class RetrainPolicy(Base):
    """When a tenant's model is retrained: its rules (a cron schedule, new data, drift),
    the job it submits, and the limits on how often."""

    __tablename__ = "ai_retrain_policies"

    policy_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    #: The start-job body it submits (its dates set at each trigger).
    job: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The rules and their thresholds (``domain.policies.Rules``).
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    cooldown_seconds: Mapped[float] = mapped_column(Float)
    max_per_day: Mapped[int] = mapped_column(Integer)
    #: Each retrain trains on the last this long of the set (None: all of it).
    window_seconds: Mapped[float | None] = mapped_column(Float)
    warm_start: Mapped[bool] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean)
    #: When a new champion is rolled back (``domain.rollbacks.RollbackRule``; None: never).
    rollback: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: Until when its schedule was looked at (its next fire is after).
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("cooldown_seconds >= 0", name="ck_policies_cooldown"),
        CheckConstraint("max_per_day > 0", name="ck_policies_rate"),
        UniqueConstraint("tenant_id", "model_name", name="uq_policies_model"),
    )


class RetrainTrigger(Base):
    """A retrain a policy started: which rule fired, on what evidence, and the job."""

    __tablename__ = "ai_retrain_triggers"

    trigger_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_retrain_policies.policy_id", ondelete="CASCADE")
    )
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_training_jobs.job_id", ondelete="CASCADE")
    )
    rule: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    fired_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("rule IN ('schedule', 'new_data', 'drift')", name="ck_triggers_rule"),
        Index("ix_triggers_policy", "policy_id", "fired_at"),
    )
