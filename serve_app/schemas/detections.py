"""Detections (an anomaly model's scores and events over a window of a set) as the API
takes and shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from domain.forecasts import ForecastStatus
from domain.names import NAME_PATTERN
from serve_app.schemas.forecasts import MAX_SERIES, SeriesName
from serve_app.schemas.models import AnomalyEventPublic
from serve_app.schemas.paging import PagePublic


class DetectionCreate(BaseModel):
    """Score the rows of ``feature_set`` (default: the model's own) from ``start``
    (inclusive) to ``end`` (exclusive), of every series or those named in ``series``."""

    model_config = ConfigDict(extra="forbid")

    feature_set: str | None = Field(None, pattern=NAME_PATTERN, examples=["anomaly_basic"])
    start: datetime | None = Field(None, description="Default: the set's first row.")
    end: datetime | None = Field(None, description="Default: past the set's last row.")
    series: list[SeriesName] | None = Field(
        None, min_length=1, max_length=MAX_SERIES, description="Default: every series."
    )


class DetectionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    detection_id: str = Field(validation_alias=AliasChoices("detection_id", "forecast_id"))
    tenant_id: str
    model_id: str
    feature_set: str
    series: list[str] | None
    start: datetime | None = Field(validation_alias=AliasChoices("start", "window_start"))
    end: datetime | None = Field(validation_alias=AliasChoices("end", "window_end"))
    status: ForecastStatus
    progress: float = Field(description="The share of the series scored so far.")
    attempts: int
    rows: int | None = Field(description="Rows of the window with an actual, once finished.")
    events: int | None = Field(description="Events overlapping the window, once finished.")
    artifact_uri: str | None = Field(description="The rows' Parquet file.")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DetectionRowPublic(BaseModel):
    series: str | None = Field(description="Null for a set of a single series.")
    timestamp: datetime
    actual: float
    predicted: float
    anomaly_score: float | None = Field(description="Calibrated: 3 is as rare as 3 sigma.")
    anomaly: bool = Field(description="Whether an event covers the row.")
    label: bool | None = Field(None, description="The set's own label, where it has one.")


class DetectionPagePublic(PagePublic):
    """The detection and one page of its rows (by series, then time; none until completed)."""

    detection: DetectionPublic
    rows: list[DetectionRowPublic]


class EventsPublic(PagePublic):
    """One page of a detection's events, by start (none until completed)."""

    detection: DetectionPublic
    events: list[AnomalyEventPublic]


class DetectionsPublic(PagePublic):
    """A page of detections, newest first."""

    detections: list[DetectionPublic]
