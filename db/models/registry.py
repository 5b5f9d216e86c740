"""The model registry's tables: registered versions, the aliases that point at them, the
decisions on each model's ``champion`` alias, and what the MLflow mirror has written of
them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, UtcDateTime, one_of
from domain.clock import utcnow
from domain.jobs import ModelType


class RegisteredModel(Base):
    __tablename__ = "ai_models"

    model_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    model_type: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ai_training_jobs.job_id", ondelete="RESTRICT")
    )
    experiment_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("ai_experiments.experiment_id", ondelete="SET NULL")
    )
    feature_set: Mapped[str] = mapped_column(String(128))
    #: The feature-set version it was trained on (None for models registered before 0006).
    feature_set_version: Mapped[str | None] = mapped_column(String(128))
    artifact_uri: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[list[str]] = mapped_column(JSON)
    #: Total gain of the splits on each feature (None for models registered before 0004).
    feature_importance: Mapped[dict[str, float] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("tenant_id", "model_name", "version", name="uq_models_version"),
        CheckConstraint(one_of("model_type", ModelType), name="ck_models_model_type"),
        Index("ix_models_tenant_name", "tenant_id", "model_name"),
        Index("ix_models_job", "job_id"),
    )


class ModelAlias(Base):
    """A movable name (``champion``, ``staging``) for one version of a tenant's model."""

    __tablename__ = "ai_model_aliases"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(
        String(300), ForeignKey("ai_models.model_id", ondelete="CASCADE")
    )
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_aliases_model", "model_id"),)


class Promotion(Base):
    """A decision on a model's ``champion`` alias and the evidence it was taken on: a
    challenger promoted or not, a rollback, or a promotion found to stand by its
    rollback rule."""

    __tablename__ = "ai_promotions"

    promotion_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    #: The version the decision was about (for a rollback: the champion rolled back).
    challenger_id: Mapped[str] = mapped_column(String(300))
    #: The champion it was compared with (for a rollback: the version restored).
    champion_id: Mapped[str | None] = mapped_column(String(300))
    decision: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(36))
    #: Both models' scores, the window, the metric, the margin and the paired test.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "decision IN ('promoted', 'kept', 'rolled_back', 'stood')",
            name="ck_promotions_decision",
        ),
        Index("ix_promotions_model", "tenant_id", "model_name", "decided_at"),
    )


class MirroredItem(Base):
    """What the MLflow mirror has written: a finished job's run, a model version, or an
    alias (``key`` ``tenant:model@alias``, ``ref`` the model id it points at)."""

    __tablename__ = "ai_mlflow_mirror"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: Up to 322 characters: tenant (128) : model (128) @ alias (64).
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    ref: Mapped[str] = mapped_column(String(300))
    mirrored_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
