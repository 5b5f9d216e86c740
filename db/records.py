"""Plain, immutable records the store hands out (never ORM objects)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from domain.auth import Role
from domain.forecasts import ForecastKind, ForecastSource, ForecastStatus
from domain.jobs import ExperimentStatus, JobStatus, LogLevel, ModelType
from domain.names import model_id
from domain.promotions import Comparison, Decision

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class NewJob:
    """What a submitter decides about a job; the store adds ids, status and times."""

    tenant_id: str
    model_type: ModelType
    model_name: str
    feature_set: str
    priority: int
    config: Mapping[str, Any]
    retry_of: str | None = None
    schedule_cron: str | None = None
    schedule_id: str | None = None
    fire_time: datetime | None = None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class IdempotencyClaim:
    """A client's Idempotency-Key and a digest of the request it came with."""

    key: str
    request_hash: str


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    request_hash: str
    job_id: str
    created_at: datetime


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    tenant_id: str
    model_type: ModelType
    model_name: str
    feature_set: str
    status: JobStatus
    priority: int
    progress: float
    stage: str | None
    config: Mapping[str, Any]
    metrics: Mapping[str, Any] | None
    model_id: str | None
    error_message: str | None
    retry_of: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    schedule_id: str | None = None
    fire_time: datetime | None = None
    #: The version of the feature set it read (None until it has read it).
    feature_set_version: str | None = None


@dataclass(frozen=True)
class JobFilters:
    tenant_id: str | None = None
    model_type: ModelType | None = None
    model_name: str | None = None
    status: JobStatus | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    page_size: int

    def with_items(self, items: Sequence[U]) -> Page[U]:
        """The same page holding other items (the records made of its rows)."""
        return Page(items, self.total, self.page, self.page_size)


@dataclass(frozen=True)
class NewLog:
    job_id: str
    level: LogLevel
    message: str
    timestamp: datetime
    stage: str | None = None
    extra: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class LogRecord:
    id: int
    job_id: str
    timestamp: datetime
    level: LogLevel
    stage: str | None
    message: str
    extra: Mapping[str, Any] | None


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    step: int = 0


@dataclass(frozen=True)
class NewExperiment:
    """An experiment to open for a job; one that has already ended (an HPO trial) is
    created with its final status."""

    name: str
    params: Mapping[str, Any] | None = None
    metrics: Sequence[MetricPoint] = ()
    status: ExperimentStatus = ExperimentStatus.RUNNING


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment; ``job_id`` is None once retention has purged its job.

    ``params`` are decoded to their logged types; ``metrics`` holds each metric's final
    value (the point with the highest step).
    """

    experiment_id: str
    job_id: str | None
    tenant_id: str
    model_name: str
    name: str
    status: ExperimentStatus
    model_id: str | None
    created_at: datetime
    completed_at: datetime | None
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentFilters:
    tenant_id: str | None = None
    job_id: str | None = None
    model_name: str | None = None
    status: ExperimentStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class ExperimentOrder:
    """Newest first by default; ``metric`` sorts by that metric's final value (missing last)."""

    metric: str | None = None
    descending: bool = True


@dataclass(frozen=True)
class NewModel:
    """A model whose artifact is saved; the store inserts it when its job completes."""

    tenant_id: str
    model_name: str
    model_type: ModelType
    version: str
    feature_set: str
    artifact_uri: str
    metrics: Mapping[str, float]
    params: Mapping[str, Any]
    features: Sequence[str]
    promote: bool = False
    feature_importance: Mapping[str, float] | None = None
    feature_set_version: str | None = None
    #: How it did against the champion on the same rows (None: not compared).
    comparison: Comparison | None = None

    @property
    def model_id(self) -> str:
        return model_id(self.tenant_id, self.model_name, self.version)


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    tenant_id: str
    model_name: str
    model_type: ModelType
    version: str
    job_id: str
    experiment_id: str | None
    feature_set: str
    artifact_uri: str
    metrics: Mapping[str, float]
    params: Mapping[str, Any]
    features: Sequence[str]
    created_at: datetime
    aliases: Sequence[str] = ()
    feature_importance: Mapping[str, float] | None = None
    feature_set_version: str | None = None


@dataclass(frozen=True)
class PromotionRecord:
    """A decision on a model's ``champion`` alias (``db.promotions``): for a rollback,
    ``challenger_id`` is the version rolled back and ``champion_id`` the one restored."""

    promotion_id: str
    tenant_id: str
    model_name: str
    challenger_id: str
    champion_id: str | None
    decision: Decision
    job_id: str | None
    evidence: Mapping[str, Any]
    reason: str
    decided_at: datetime


@dataclass(frozen=True)
class ModelFilters:
    tenant_id: str | None = None
    model_name: str | None = None
    model_type: ModelType | None = None


@dataclass(frozen=True)
class ExpiredForecast:
    """A finished batch forecast whose row retention deleted: its file goes next."""

    tenant_id: str
    forecast_id: str


@dataclass(frozen=True)
class PurgeReport:
    """What one retention run deleted."""

    jobs: int
    logs: int
    #: The purged jobs' ids (their files go too: an HPO job's study journal).
    job_ids: tuple[str, ...] = ()
    #: Feature-set versions removed (``<set directory>@<version>``).
    feature_versions: tuple[str, ...] = ()
    forecasts: tuple[ExpiredForecast, ...] = ()


@dataclass(frozen=True)
class NewForecast:
    """What a caller asks for; the store adds the status and times."""

    tenant_id: str
    model_id: str
    feature_set: str
    horizon: int
    series: tuple[str, ...] | None = None
    forecast_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    kind: ForecastKind = ForecastKind.FORECAST
    #: A detection's window, start inclusive, end exclusive (None: from the set's first
    #: row, to past its last).
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class ForecastRecord:
    forecast_id: str
    tenant_id: str
    model_id: str
    feature_set: str
    horizon: int
    series: tuple[str, ...] | None
    status: ForecastStatus
    progress: float
    attempts: int
    rows: int | None
    artifact_uri: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    source: ForecastSource = ForecastSource.BATCH
    kind: ForecastKind = ForecastKind.FORECAST
    window_start: datetime | None = None
    window_end: datetime | None = None
    #: A completed detection's events.
    events: int | None = None


@dataclass(frozen=True)
class ForecastFilters:
    tenant_id: str | None = None
    model_id: str | None = None
    status: ForecastStatus | None = None
    kind: ForecastKind = ForecastKind.FORECAST


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    tenant_id: str
    role: Role
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``token`` is shown once and never stored."""

    record: KeyRecord
    token: str


def alias_key(tenant_id: str, model_name: str, alias: str) -> str:
    return f"{tenant_id}:{model_name}@{alias}"


class MirrorKind(StrEnum):
    JOB = "job"
    MODEL = "model"
    ALIAS = "alias"
    DECISION = "decision"  # a promotion decision, as tags of its challenger's version


@dataclass(frozen=True)
class AliasChange:
    """An alias to set on (``model_id``) or remove from (``model_id`` None) the mirror."""

    tenant_id: str
    model_name: str
    alias: str
    model_id: str | None

    @property
    def key(self) -> str:
        return alias_key(self.tenant_id, self.model_name, self.alias)


@dataclass(frozen=True)
class NewSchedule:
    tenant_id: str
    name: str
    cron: str
    timezone: str
    job: Mapping[str, Any]
    window_seconds: float
    enabled: bool
    concurrency_policy: str


@dataclass(frozen=True)
class ScheduleRecord:
    schedule_id: str
    tenant_id: str
    name: str
    cron: str
    timezone: str
    job: Mapping[str, Any]
    window_seconds: float
    enabled: bool
    concurrency_policy: str
    created_at: datetime
    updated_at: datetime
    last_fire_at: datetime | None
