"""The forecasts' tables: batch forecasts (detections and logged predictions too), and
the stored forecasts scored against the actuals that arrived later."""

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
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, UtcDateTime, one_of
from domain.clock import utcnow
from domain.forecasts import ForecastKind, ForecastSource, ForecastStatus


class BatchForecast(Base):
    """A batch forecast of a model over a feature set's series; its rows are a Parquet
    file at ``artifact_uri`` once it has completed."""

    __tablename__ = "ai_batch_forecasts"

    forecast_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_id: Mapped[str] = mapped_column(
        String(300), ForeignKey("ai_models.model_id", ondelete="CASCADE")
    )
    feature_set: Mapped[str] = mapped_column(String(128))
    horizon: Mapped[int] = mapped_column(Integer)
    #: The series asked for (None: every series of the set).
    series: Mapped[list[str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    #: ``batch``: a background forecast; ``predict``: a request's forecasts, kept (log).
    source: Mapped[str] = mapped_column(String(8), default=ForecastSource.BATCH.value)
    #: ``forecast``, or ``detection``: an anomaly model's scores over the window
    #: ``window_start`` (inclusive) to ``window_end`` (exclusive), with ``events`` events.
    kind: Mapped[str] = mapped_column(String(16), default=ForecastKind.FORECAST.value)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    events: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int | None] = mapped_column(Integer)
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(one_of("status", ForecastStatus), name="ck_forecasts_status"),
        CheckConstraint("horizon > 0", name="ck_forecasts_horizon"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="ck_forecasts_progress"),
        CheckConstraint(one_of("source", ForecastSource), name="ck_forecasts_source"),
        CheckConstraint(one_of("kind", ForecastKind), name="ck_forecasts_kind"),
        Index("ix_forecasts_tenant_created", "tenant_id", "created_at"),
        Index("ix_forecasts_status", "status"),
        Index("ix_forecasts_model_status", "model_id", "status", "created_at"),
        Index("ix_forecasts_kind_tenant_created", "kind", "tenant_id", "created_at"),
    )


class MonitorEvaluation(Base):
    """A stored forecast scored against the actuals a feature-set version brought: over
    all its rows that have actuals, per lead time and per series (scored again when a
    later version brings more of them)."""

    __tablename__ = "ai_monitor_evaluations"

    #: The forecast scored (no foreign key: the scores outlive the forecast's rows and
    #: file, which retention deletes after a month; they are the model's history).
    forecast_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_id: Mapped[str] = mapped_column(
        String(300), ForeignKey("ai_models.model_id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = mapped_column(String(128))
    feature_set: Mapped[str] = mapped_column(String(128))
    #: The version whose actuals were used.
    feature_set_version: Mapped[str] = mapped_column(String(128))
    #: The forecast's first timestamp: the forecast date it is charted at.
    origin: Mapped[datetime] = mapped_column(UtcDateTime)
    #: The forecast's rows, and how many of them had actuals.
    forecast_rows: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    by_lead: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    by_series: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The model's drift checks as of this evaluation (accuracy, covariate and target
    #: shift: each a status and the numbers behind it).
    health: Mapped[dict[str, Any]] = mapped_column(JSON)
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: The promotion whose rollback rule had the previous champion forecast these rows,
    #: and both models' scores on them (``pipeline.monitoring.shadow``).
    shadow_promotion_id: Mapped[str | None] = mapped_column(String(36))
    shadow: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint("rows >= 0", name="ck_evaluations_rows"),
        Index("ix_evaluations_model_origin", "model_id", "origin"),
        Index("ix_evaluations_shadow", "shadow_promotion_id", "origin"),
    )
