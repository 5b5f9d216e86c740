"""Registered models, aliases and predictions as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.jobs import ModelType
from serve_app.schemas.paging import PagePublic

VERSION_PATTERN = r"^\d{8}\.\d{6}$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
#: Rows one prediction request may carry.
MAX_PREDICT_ROWS = 20_000

RowValue = float | int | str | bool | None


class ModelPublic(BaseModel):
    """A registered version: metrics, params, features, lineage and where the artifact is."""

    model_config = ConfigDict(from_attributes=True)

    model_id: str
    tenant_id: str
    model_name: str
    model_type: ModelType
    version: str
    aliases: list[str]
    job_id: str = Field(description="The job that trained it.")
    experiment_id: str | None = Field(description="The experiment that recorded the run.")
    feature_set: str
    feature_set_version: str | None = Field(
        None, description="The feature-set version it was trained on (its data lineage)."
    )
    artifact_uri: str
    metrics: dict[str, float]
    params: dict[str, Any] = Field(
        description="Its LightGBM parameters (a blend's first booster's; 'objective' lists "
        "each booster's), and 'target_relative_to' where its boosters forecast the target "
        "minus the series' level, that feature (the level is added back to every forecast)."
    )
    features: list[str]
    feature_importance: dict[str, float] | None = Field(
        description="Total gain of the splits on each feature (LightGBM importance_type="
        "'gain', averaged over a blend's boosters); null for models registered before it."
    )
    created_at: datetime


class ModelsPublic(PagePublic):
    models: list[ModelPublic]


class AliasUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=VERSION_PATTERN, examples=["20261127.031500"])


class PredictRequest(BaseModel):
    """Raw feature-set rows: timestamp, series (if any), covariates and the target. Rows
    with a null target are forecast; the rows before them are the history the lags need."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, RowValue]] = Field(min_length=1, max_length=MAX_PREDICT_ROWS)
    explain: bool = Field(
        False,
        description="Return each feature's contribution to each forecast (LightGBM "
        "pred_contrib); with expected_value they sum to the forecast.",
    )
    log: bool = Field(
        False,
        description="Keep the forecasts (forecasting models): they are stored as a forecast "
        "of the model's feature set, and scored in its monitoring once their actuals arrive.",
    )


class ExplanationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    expected_value: float = Field(description="The model's average forecast.")
    contributions: dict[str, float]


class PredictionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    timestamp: datetime
    series: str | None
    predicted: float
    actual: float | None
    anomaly: bool | None = Field(
        description="Anomaly models only, for rows with a target: the row is in an event."
    )
    anomaly_score: float | None = Field(
        description="Anomaly models: the residual's calibrated score, a standard-normal "
        "deviate of how rare it is against the series' recent residuals (3: as rare as a "
        "3-sigma normal residual)."
    )
    quantiles: dict[str, float] | None = Field(
        None,
        description="Forecast quantiles by probability ('0.1', '0.5', '0.9'): conformal "
        "intervals from the validation part's out-of-sample errors, rescaled by the misses "
        "of the request's own history rows after the model's test start (28 days of them "
        "before each forecast's origin give the evaluated intervals).",
    )
    explanation: ExplanationPublic | None = Field(None, description="With explain: true.")


class AnomalyEventPublic(BaseModel):
    """Alarms of one series close together, from the first to the last."""

    model_config = ConfigDict(from_attributes=True)

    series: str | None
    start: datetime
    end: datetime
    peak_at: datetime
    peak_score: float = Field(description="The highest calibrated score in the event.")
    severity: Literal["low", "medium", "high"] = Field(
        description="medium: the peak is a standard-normal unit past the threshold (tens of "
        "times rarer), high: two."
    )
    rows: int


class PredictionsPublic(BaseModel):
    model_id: str
    predictions: list[PredictionPublic]
    events: list[AnomalyEventPublic] | None = Field(
        None, description="Anomaly models: the events among the rows, in order of start."
    )
    forecast_id: str | None = Field(
        None, description="With log: true, the stored forecast (GET /ai/models/forecasts/{id})."
    )


class EvaluatedPredictionsPublic(PagePublic):
    """A page of the test period as evaluated at registration."""

    model_id: str
    predictions: list[PredictionPublic]


class SeriesMetricsPublic(BaseModel):
    """One series' accuracy on the test part."""

    series: str
    rows: int
    mae: float
    rmse: float
    mase: float | None = Field(description="MAE over the series' in-sample seasonal-naive MAE.")
    coverage: dict[str, float] = Field(
        description="Share of test points inside each central interval, by nominal % ('80')."
    )


class SeriesMetricsPagePublic(PagePublic):
    model_id: str
    series: list[SeriesMetricsPublic]
