"""Experiments as the API shows them: lists, one experiment, series and comparisons."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.jobs import ExperimentStatus, JobStatus, ModelType
from serve_app.params import IdItem, MetricName
from serve_app.schemas.paging import PagePublic

#: How many experiments one comparison takes.
COMPARE_MIN, COMPARE_MAX = 2, 20


class ExperimentPublic(BaseModel):
    """An experiment with its final metrics (the last logged value of each)."""

    model_config = ConfigDict(from_attributes=True)

    experiment_id: str
    job_id: str | None = Field(description="None once retention has purged the job.")
    tenant_id: str
    model_name: str
    name: str
    status: ExperimentStatus
    model_id: str | None
    created_at: datetime
    completed_at: datetime | None
    metrics: dict[str, float]


class ExperimentsPublic(PagePublic):
    experiments: list[ExperimentPublic]


class JobLineage(BaseModel):
    """The job that produced an experiment, and the job it retried."""

    model_config = ConfigDict(from_attributes=True)

    job_id: str
    status: JobStatus
    model_type: ModelType
    feature_set: str
    feature_set_version: str | None = None
    attempts: int
    retry_of: str | None
    created_at: datetime
    completed_at: datetime | None


class ExperimentDetail(ExperimentPublic):
    params: dict[str, Any]
    job: JobLineage | None


class MetricPointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    step: int
    value: float


class MetricSeries(BaseModel):
    experiment_id: str
    points: list[MetricPointPublic]
    truncated: bool = Field(
        False,
        description="The experiment has more points than a response holds (the first ones "
        "by name and step are here): narrow name, min_step or max_step for the rest.",
    )


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_ids: list[IdItem] = Field(min_length=COMPARE_MIN, max_length=COMPARE_MAX)
    metric: MetricName = Field("validation_l1", description="The curve to align.")

    @field_validator("experiment_ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("experiment ids must be distinct")
        return ids


class ParamComparison(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    values: dict[str, Any]
    differs: bool


class MetricComparison(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    values: dict[str, float | None]
    goal: Literal["min", "max"] | None
    best: list[str]


class AlignedCurvePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    steps: list[int]
    values: dict[str, list[float | None]]


class WindowRowPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    experiment_id: str
    gain: float | None = Field(
        description="Mean error over the windows below the baseline's, relative to it "
        "(None: the windows cannot be paired)"
    )
    margin: float | None = Field(description="The gain it had to clear to win")
    won: bool


class WindowComparisonPublic(BaseModel):
    """Which won over the validation windows, as a search decides whether its best trial
    replaces the default parameters: each experiment against the first one that has
    window errors (the baseline; put the default trial first)."""

    model_config = ConfigDict(from_attributes=True)

    metric: str
    baseline: str
    rows: list[WindowRowPublic]
    winner: str


class ExperimentComparison(BaseModel):
    experiments: list[ExperimentPublic]
    params: list[ParamComparison]
    metrics: list[MetricComparison]
    curve: AlignedCurvePublic
    windows: WindowComparisonPublic | None = Field(
        description="None unless two experiments have window errors (HPO trials do)"
    )
    truncated: list[str] = Field(
        default_factory=list,
        description="Experiments whose curve holds more steps than their equal share of a "
        "response: their curve is cut short (GET /experiments/{id}/metrics pages the rest).",
    )
