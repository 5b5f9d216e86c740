"""Batch forecasts as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.forecasts import ForecastSource, ForecastStatus
from domain.names import NAME_PATTERN
from serve_app.schemas.paging import PagePublic

#: The most steps and series one forecast may ask for.
MAX_HORIZON = 10_000
MAX_SERIES = 100_000

SeriesName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ForecastCreate(BaseModel):
    """Forecast the next ``horizon`` steps of every series of ``feature_set`` (or those
    named in ``series``) from its stored history."""

    model_config = ConfigDict(extra="forbid")

    feature_set: str = Field(pattern=NAME_PATTERN, examples=["forecast_basic"])
    horizon: int = Field(
        ge=1,
        le=MAX_HORIZON,
        description="Steps past each series' last known target; at most the model's own "
        "horizon (its lags reach no further).",
    )
    series: list[SeriesName] | None = Field(
        None, min_length=1, max_length=MAX_SERIES, description="Default: every series."
    )


class ForecastPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    forecast_id: str
    tenant_id: str
    model_id: str
    feature_set: str
    horizon: int
    series: list[str] | None
    status: ForecastStatus
    progress: float = Field(description="The share of the series forecast so far.")
    attempts: int
    rows: int | None = Field(description="Rows of the finished forecast.")
    artifact_uri: str | None = Field(description="The forecast's Parquet file.")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    source: ForecastSource = Field(
        description="'batch': a background forecast; 'predict': a request's, kept (log)."
    )


class ForecastRowPublic(BaseModel):
    series: str | None = Field(description="Null for a set of a single series.")
    timestamp: datetime
    predicted: float
    quantiles: dict[str, float] | None = Field(
        None,
        description="Forecast quantiles by probability ('0.1', '0.5', '0.9'), rescaled by "
        "the misses of the series' last 28 days of forecasts after the model's test start.",
    )


class ForecastPagePublic(PagePublic):
    """The forecast and one page of its rows (by series, then time; none until completed)."""

    forecast: ForecastPublic
    predictions: list[ForecastRowPublic]


class ForecastsPublic(PagePublic):
    """A page of batch forecasts, newest first."""

    forecasts: list[ForecastPublic]
