"""The tables: the seed's five, the model registry (``ai_models``, ``ai_model_aliases``),
API keys, idempotency keys, cron schedules, what the MLflow mirror has written, batch
forecasts (and logged predictions), their evaluations against actuals, and promotions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from domain.clock import utcnow
from domain.forecasts import ForecastKind, ForecastSource, ForecastStatus
from domain.jobs import ExperimentStatus, JobStatus, LogLevel, ModelType

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
AutoIncrementId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


class Base(DeclarativeBase):
    pass


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
        CheckConstraint(_one_of("status", JobStatus), name="ck_jobs_status"),
        CheckConstraint(_one_of("model_type", ModelType), name="ck_jobs_model_type"),
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
        CheckConstraint(_one_of("status", ExperimentStatus), name="ck_experiments_status"),
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
        CheckConstraint(_one_of("level", LogLevel), name="ck_logs_level"),
        Index("ix_logs_job", "job_id", "id"),
        Index("ix_logs_timestamp", "timestamp"),
    )


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
        CheckConstraint(_one_of("model_type", ModelType), name="ck_models_model_type"),
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


class ApiKey(Base):
    """An API key: only the SHA-256 of its secret is stored."""

    __tablename__ = "ai_api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(8))
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'member', 'admin')", name="ck_keys_role"),
        Index("ix_keys_tenant", "tenant_id"),
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


class MirroredItem(Base):
    """What the MLflow mirror has written: a finished job's run, a model version, or an
    alias (``key`` ``tenant:model@alias``, ``ref`` the model id it points at)."""

    __tablename__ = "ai_mlflow_mirror"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    ref: Mapped[str] = mapped_column(String(300))
    mirrored_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


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
        CheckConstraint(_one_of("status", ForecastStatus), name="ck_forecasts_status"),
        CheckConstraint("horizon > 0", name="ck_forecasts_horizon"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="ck_forecasts_progress"),
        CheckConstraint(_one_of("source", ForecastSource), name="ck_forecasts_source"),
        CheckConstraint(_one_of("kind", ForecastKind), name="ck_forecasts_kind"),
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


class Promotion(Base):
    """A decision on a model's ``champion`` alias and the evidence it was taken on: a
    challenger promoted or not, or a rollback."""

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
            "decision IN ('promoted', 'kept', 'rolled_back')", name="ck_promotions_decision"
        ),
        Index("ix_promotions_model", "tenant_id", "model_name", "decided_at"),
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
