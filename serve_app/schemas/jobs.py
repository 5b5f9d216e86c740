"""Jobs, their logs and the queue statistics: request and response shapes (the seed's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from actors.submission import JobSubmission
from domain.jobs import JobStatus, LogLevel, ModelType
from pipeline.config import TrainingConfig
from pipeline.resources import demand_of
from serve_app.schemas.paging import PagePublic

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


class JobResources(BaseModel):
    """The CPUs a job holds while it runs, reserved as Ray placement groups before it
    starts: its bundles (placed together; the first runs its stages) and its search's
    trial slots (placed one by one; an urgent or high job may take them back)."""

    cpus: int = Field(description="Every CPU it holds at once.")
    bundles: list[dict[str, int]] = Field(description="CPUs of each bundle: one node each.")
    trial_slots: int = Field(description="One-CPU trial slots beside the bundles.")
    strategy: str = Field(description="PACK, or SPREAD for data-parallel workers.")


class JobPublic(BaseModel):
    """A job as the API shows it; built from a ``JobRecord`` with ``model_validate``."""

    model_config = ConfigDict(from_attributes=True)

    job_id: str
    tenant_id: str
    model_type: ModelType
    model_name: str
    feature_set: str
    feature_set_version: str | None = Field(
        None, description="The feature-set version the job read (null until it has read it)."
    )
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
    schedule_id: str | None = None
    fire_time: datetime | None = None
    queue_position: int | None = Field(
        None,
        description="Queued jobs: 1 starts next (to a tenant's key: next of its tenant's).",
    )
    waiting_reason: str | None = Field(None, description="Queued jobs: why it has not started.")
    held_cpus: int | None = Field(
        None,
        description="Running jobs: the CPUs its reservation holds now (fewer than "
        "resources.cpus while trial slots are taken back for a more urgent job).",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resources(self) -> JobResources | None:
        """What the job holds while it runs, from its config (None for a config this
        version cannot read)."""
        try:
            config = TrainingConfig.model_validate(self.config)
        except ValidationError:
            return None
        return JobResources.model_validate(demand_of(config).public())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> int | None:
        """Whole seconds from start to end (or to the last update, while it runs), as in
        the seed's contract."""
        if self.started_at is None:
            return None
        end = self.completed_at or self.updated_at
        return round((end - self.started_at).total_seconds())


class JobsPublic(PagePublic):
    jobs: list[JobPublic]


class JobCancelled(BaseModel):
    job_id: str
    status: JobStatus
    message: str


class QueuedJobsCancelled(BaseModel):
    tenant_id: str
    cancelled: int = Field(description="How many queued jobs were cancelled.")
    job_ids: list[str]


class LogEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    timestamp: datetime
    level: LogLevel
    stage: str | None
    message: str


class LogsPublic(BaseModel):
    job_id: str
    logs: list[LogEntry]
    count: int


class StatsPublic(BaseModel):
    active_jobs: int
    queued_jobs: int
    total_capacity: int = Field(
        description="CPUs jobs may reserve now: the cluster's alive nodes' (capacity is CPUs)."
    )
    utilization_percent: float = Field(description="CPUs reserved over total_capacity.")
    max_capacity: int = Field(description="CPUs once the cluster has grown to its maximum.")
    cluster_cpus: int = Field(description="CPUs of the cluster's alive nodes.")
    cpus_reserved: int = Field(
        description="CPUs the running jobs and batch forecasts hold in their reservations."
    )
    max_concurrent_jobs: int | None = Field(
        None, description="The operator's cap on jobs running at once, if set."
    )
