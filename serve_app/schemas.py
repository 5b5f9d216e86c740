"""Request and response shapes of the HTTP API (the seed's models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from actors.submission import JobSubmission
from db.records import JobRecord, LogRecord
from domain.jobs import JobStatus, LogLevel, ModelType
from pipeline.feature_store import FeatureSetSchema

EXAMPLE_JOB: dict[str, Any] = {
    "tenant_id": "tenant-123",
    "model_type": "forecast",
    "model_name": "load_forecast",
    "config": {
        "start_date": "2024-03-01T00:00:00Z",
        "end_date": "2025-12-01T00:00:00Z",
        "feature_set": "forecast_basic",
        "target_variable": "load_kw",
        "horizon": 24,
        "enable_hpo": False,
        "validation_split": 0.2,
        "test_split": 0.1,
    },
    "priority": "normal",
}


class JobCreate(JobSubmission):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_JOB]})


class JobCreated(BaseModel):
    job_id: str
    status: JobStatus
    created_at: datetime
    estimated_duration_seconds: int
    message: str


class JobPublic(BaseModel):
    job_id: str
    tenant_id: str
    model_type: ModelType
    model_name: str
    feature_set: str
    status: JobStatus
    priority: int
    progress: float
    stage: str | None
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    model_id: str | None
    error_message: str | None
    retry_of: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    completed_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at or self.updated_at
        return round((end - self.started_at).total_seconds(), 3)

    @classmethod
    def of(cls, job: JobRecord) -> JobPublic:
        return cls(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            model_type=job.model_type,
            model_name=job.model_name,
            feature_set=job.feature_set,
            status=job.status,
            priority=job.priority,
            progress=job.progress,
            stage=job.stage,
            config=dict(job.config),
            metrics=dict(job.metrics) if job.metrics is not None else None,
            model_id=job.model_id,
            error_message=job.error_message,
            retry_of=job.retry_of,
            attempts=job.attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            updated_at=job.updated_at,
            completed_at=job.completed_at,
        )


class JobsPublic(BaseModel):
    jobs: list[JobPublic]
    total: int
    page: int
    page_size: int


class JobCancelled(BaseModel):
    job_id: str
    status: JobStatus
    message: str


class LogEntry(BaseModel):
    timestamp: datetime
    level: LogLevel
    stage: str | None
    message: str

    @classmethod
    def of(cls, line: LogRecord) -> LogEntry:
        return cls(
            timestamp=line.timestamp, level=line.level, stage=line.stage, message=line.message
        )


class LogsPublic(BaseModel):
    job_id: str
    logs: list[LogEntry]
    count: int


class StatsPublic(BaseModel):
    active_jobs: int
    queued_jobs: int
    total_capacity: int
    utilization_percent: float


class FeatureSetPublic(BaseModel):
    name: str
    timestamp_column: str
    target_column: str
    series_column: str | None
    label_column: str | None
    covariates: list[str]
    columns: list[str]
    rows: int
    start: datetime
    end: datetime
    created_at: datetime

    @classmethod
    def of(cls, schema: FeatureSetSchema) -> FeatureSetPublic:
        return cls(
            name=schema.name,
            timestamp_column=schema.timestamp_column,
            target_column=schema.target_column,
            series_column=schema.series_column,
            label_column=schema.label_column,
            covariates=schema.covariates,
            columns=schema.columns,
            rows=schema.rows,
            start=datetime.fromisoformat(schema.start),
            end=datetime.fromisoformat(schema.end),
            created_at=datetime.fromisoformat(schema.created_at),
        )


class FeatureSetsPublic(BaseModel):
    feature_sets: list[FeatureSetPublic]
