"""Monitoring responses: a model's served forecasts scored against their actuals, and its
drift checks (``pipeline.monitoring.drift`` states the rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from serve_app.schemas.paging import PagePublic

Status = Literal["ok", "watch", "drifted"]


class AccuracyPublic(BaseModel):
    status: Status
    live_mae: float = Field(description="Mean MAE of the most recent scored forecasts.")
    test_mae: float = Field(description="Mean MAE of the test part's forecast windows.")
    ratio: float | None = Field(description="live_mae / test_mae.")
    z: float | None = Field(
        description="Standard errors (from the test windows' spread) the live MAE lies "
        "above the test MAE."
    )
    band: tuple[float, float] = Field(description="The live MAE's band if nothing changed.")
    windows: int = Field(description="Scored forecasts the live MAE is taken over.")
    test_windows: int


class ShiftPublic(BaseModel):
    status: Status
    psi: float = Field(description="Population stability index against the training rows.")
    rows: int = Field(description="Recent values compared.")


class HealthPublic(BaseModel):
    status: Status = Field(description="The model's status: its accuracy's.")
    accuracy: AccuracyPublic | None
    target: ShiftPublic | None
    covariates: dict[str, ShiftPublic]


class PairPublic(BaseModel):
    model: float | None = Field(description="The model's score on the rows both forecast.")
    previous: float | None = Field(description="The previous champion's on the same rows.")


class ShadowDayPublic(BaseModel):
    day: str = Field(description="The UTC day of the rows.")
    rows: int
    metrics: dict[str, PairPublic]


class ShadowPublic(BaseModel):
    """The champion the model's promotion replaced, forecasting the same rows (while the
    policy's rollback rule watches the promotion)."""

    promotion_id: str
    model_id: str = Field(description="The previous champion.")
    rows: int = Field(description="Rows both forecast (0: not compared).")
    metrics: dict[str, PairPublic] = Field(
        default_factory=dict, description="MAE, and WQL and coverage_error where both have them."
    )
    days: list[ShadowDayPublic] = Field(default_factory=list)
    not_compared: str | None = Field(None, description="Why not, when rows is 0.")


class EvaluationPublic(BaseModel):
    """One stored forecast scored against the actuals that arrived."""

    forecast_id: str
    origin: datetime = Field(description="The forecast's first timestamp.")
    feature_set: str
    feature_set_version: str = Field(description="The version whose actuals were used.")
    forecast_rows: int
    rows: int = Field(description="Forecast rows with an actual.")
    metrics: dict[str, float] = Field(description="MAE, RMSE, bias, WQL, coverage_80.")
    health: HealthPublic | None = Field(
        description="The drift check (null until 90 % of the forecast's rows have actuals)."
    )
    evaluated_at: datetime
    shadow: ShadowPublic | None = Field(
        None, description="The previous champion's scores beside the model's (null: none)."
    )

    @field_validator("health", mode="before")
    @classmethod
    def _judged_only(cls, health: object) -> object:
        return health or None  # a partly scored forecast is stored with no health


class EvaluationDetailPublic(EvaluationPublic):
    by_lead: list[dict[str, float]] = Field(description="The metrics per lead time (1: first).")
    by_series: dict[str, dict[str, float]] = Field(
        description="The metrics per series (the 200 worst by MAE for larger sets)."
    )


class MonitoringPublic(PagePublic):
    model_id: str
    test: dict[str, float] = Field(description="The model's test metrics at registration.")
    status: HealthPublic | None = Field(description="As of the latest scored forecast.")
    evaluations: list[EvaluationPublic] = Field(description="Latest forecast date first.")
