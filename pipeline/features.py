"""Model inputs computed from a raw series, without looking into the future.

For a forecast ``horizon`` steps ahead, every feature of the row at time t uses target
values at t - horizon or earlier: lags are at least ``horizon`` steps, rolling windows are
shifted by ``horizon``. Calendar features and covariates (known at forecast time) are taken
at t itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from domain.errors import PipelineError
from pipeline.feature_store import FeatureFrame

CALENDAR_FEATURES = ("hour", "day_of_week", "month", "day_of_year", "is_weekend")


@dataclass(frozen=True)
class FeatureMatrix:
    """One row per (series, timestamp) that has every lag it needs."""

    features: pd.DataFrame
    target: np.ndarray
    timestamps: pd.Series
    series: pd.Series | None
    labels: np.ndarray | None
    seasonal_naive: np.ndarray
    season: int


def steps_per_day(timestamps: pd.Series) -> int:
    """The number of steps in one day, from the typical spacing of distinct timestamps."""
    spacing = timestamps.drop_duplicates().sort_values().diff().dropna()
    if spacing.empty:
        raise PipelineError("a series needs at least two timestamps")
    seconds = pd.Timedelta(spacing.median()).total_seconds()
    if seconds <= 0:
        raise PipelineError("timestamps must increase")
    return max(1, round(86_400 / seconds))


def lag_steps(horizon: int, season: int) -> list[int]:
    """Target lags usable at this horizon: recent ones and daily/weekly echoes."""
    candidates = {horizon, horizon + 1, horizon + 2, season, 2 * season, 7 * season}
    return sorted(k for k in candidates if k >= horizon)


def naive_lag(horizon: int, season: int) -> int:
    """The seasonal-naive forecast's lag: the latest whole season at least ``horizon`` back."""
    return season * math.ceil(horizon / season)


def rolling_windows(season: int) -> list[int]:
    return [season, 7 * season]


def build_features(
    frame: FeatureFrame,
    horizon: int,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    season: int | None = None,
    require_target: bool = True,
) -> FeatureMatrix:
    """Compute features per series, then keep the rows in [start, end) that have every lag.

    ``season`` (steps per day) is inferred from the timestamps unless given; rows without a
    target (the future, when serving) are kept only if ``require_target`` is false.
    """
    schema = frame.schema
    data = frame.data
    ts_col, target_col, series_col = (
        schema.timestamp_column,
        schema.target_column,
        schema.series_column,
    )
    season = season or steps_per_day(data[ts_col])
    groups = [g for _, g in data.groupby(series_col, sort=False)] if series_col else [data]
    parts = [_series_features(g, target_col, ts_col, horizon, season) for g in groups]
    table = pd.concat(parts, ignore_index=True)
    keep = table.filter(like="lag_").notna().all(axis=1)
    if require_target:
        keep &= table[target_col].notna()
    keep &= table.filter(like="roll_").notna().all(axis=1)
    if start is not None:
        keep &= table[ts_col] >= pd.Timestamp(start)
    if end is not None:
        keep &= table[ts_col] < pd.Timestamp(end)
    table = table[keep].sort_values([ts_col, *([series_col] if series_col else [])], kind="stable")
    table = table.reset_index(drop=True)
    names = [*CALENDAR_FEATURES, *schema.covariates]
    names += [c for c in table.columns if c.startswith(("lag_", "roll_"))]
    return FeatureMatrix(
        features=table[names].astype("float64"),
        target=table[target_col].to_numpy(dtype="float64"),
        timestamps=table[ts_col],
        series=table[series_col] if series_col else None,
        labels=table[schema.label_column].to_numpy(dtype=bool) if schema.label_column else None,
        seasonal_naive=table["_seasonal_naive"].to_numpy(dtype="float64"),
        season=season,
    )


def _series_features(
    group: pd.DataFrame, target_col: str, ts_col: str, horizon: int, season: int
) -> pd.DataFrame:
    out = group.sort_values(ts_col).reset_index(drop=True)
    stamps = out[ts_col].dt
    out["hour"] = stamps.hour
    out["day_of_week"] = stamps.dayofweek
    out["month"] = stamps.month
    out["day_of_year"] = stamps.dayofyear
    out["is_weekend"] = (stamps.dayofweek >= 5).astype(int)
    target = out[target_col]
    for k in lag_steps(horizon, season):
        out[f"lag_{k}"] = target.shift(k)
    visible = target.shift(horizon)
    for window in rolling_windows(season):
        rolled = visible.rolling(window, min_periods=window)
        out[f"roll_mean_{window}"] = rolled.mean()
        out[f"roll_std_{window}"] = rolled.std()
    out["_seasonal_naive"] = target.shift(naive_lag(horizon, season))
    return out
