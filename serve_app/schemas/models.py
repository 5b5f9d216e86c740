"""Registered models, aliases and predictions as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.jobs import ModelType

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
    artifact_uri: str
    metrics: dict[str, float]
    params: dict[str, Any]
    features: list[str]
    created_at: datetime


class ModelsPublic(BaseModel):
    models: list[ModelPublic]
    total: int
    page: int
    page_size: int


class AliasUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=VERSION_PATTERN, examples=["20261127.031500"])


class PredictRequest(BaseModel):
    """Raw feature-set rows: timestamp, series (if any), covariates and the target. Rows
    with a null target are forecast; the rows before them are the history the lags need."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, RowValue]] = Field(min_length=1, max_length=MAX_PREDICT_ROWS)


class PredictionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    timestamp: datetime
    series: str | None
    predicted: float
    actual: float | None
    anomaly: bool | None = Field(description="Anomaly models only, for rows with a target.")
    anomaly_score: float | None = Field(description="|robust z| of the residual.")


class PredictionsPublic(BaseModel):
    model_id: str
    predictions: list[PredictionPublic]
