"""Model inputs computed from a raw series, without looking into the future.

For a forecast ``horizon`` steps ahead, every feature of the row at time t uses target
values at t - horizon or earlier: lags are at least ``horizon`` steps, rolling windows are
shifted by ``horizon``, and last year's values are a year old. Calendar features,
holidays and covariates (known at forecast time) are taken at t itself.

Each series is laid on a regular grid at its own step first, so a missing timestamp is a
missing value, never a shifted lag. Missing values stay missing (LightGBM routes them):
a gap in the meter's readings costs the rows it touches a feature, not the row.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import PipelineError
from pipeline.calendars import holiday_flags
from pipeline.config import TrainingConfig
from pipeline.features.seasons import DAY_SECONDS, SUB_DAILY_CALENDAR, WEEK_SECONDS, seasons_of
from pipeline.store.feature_store import FeatureFrame, typical_step

logger = logging.getLogger(__name__)
#: Steps this long or longer are calendar months (or quarters, years) of uneven length.
CALENDAR_STEP = pd.Timedelta(days=28)

#: Calendar inputs of models registered before ``FeatureSpec.calendar`` (new ones get
#: their cadence's); ``time_of_day`` counts the data's own steps in a day (48 slots for
#: half-hourly data), where models registered before it read ``hour``.
CALENDAR_FEATURES = SUB_DAILY_CALENDAR
HOLIDAY_FEATURE = "is_holiday"
#: A multi-series set's series, as a categorical feature (its index in ``FeatureSpec.series``):
#: one model then learns each meter's own level and shape, and forecasts every meter
#: better (measured by bench/series_feature.py).
SERIES_FEATURE = "series_id"
YEARLY_FEATURES = ("last_year", "last_year_ratio")
#: Last year's values become features when the training part holds at least this many
#: days of rows that reach a year back.
YEARLY_MIN_TRAINING = pd.Timedelta(weeks=8)
#: How far back last year's values reach (a calendar year is at most this long).
YEARLY_HISTORY_DAYS = 366
#: Last week's values (a weekly lag and rolling window) become features when the training
#: part spans at least this long: shorter, the week's warm-up would take most of its rows
#: (as it did for a sensor's 12 days of 5-minute readings).
WEEKLY_MIN_TRAINING = pd.Timedelta(weeks=3)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a model reads; saved with it so serving rebuilds exactly these."""

    horizon: int
    season: int
    holidays: str | None = None
    yearly: bool = False
    #: The series of the training data, whose positions ``series_id`` holds (None: one
    #: series, or a model registered before the feature existed).
    series: tuple[str, ...] | None = None
    #: The series' typical spacing (None for models registered before it was kept).
    step_seconds: float | None = None
    #: Whether the lags and rolling windows reach a week back (``WEEKLY_MIN_TRAINING``).
    weekly: bool = True
    #: The seasonal features the data's cadence gives (``pipeline.features.seasons``);
    #: None for models registered before them, which echo a day of steps and a week.
    lags: tuple[int, ...] | None = None
    windows: tuple[int, ...] | None = None
    year_lag: int | None = None
    calendar: tuple[str, ...] | None = None

    @property
    def step(self) -> pd.Timedelta:
        """One step of the grid the series are laid on: the data's own spacing (a week for
        weekly data, whose season is 1)."""
        return pd.Timedelta(seconds=self.step_seconds or DAY_SECONDS / self.season)

    @property
    def target_lags(self) -> list[int]:
        """The lags within the warm-up (the year-old one is apart: ``year_lag``)."""
        if self.lags is None:
            return lag_steps(self.horizon, self.season, self.weekly)
        return list(self.lags)

    @property
    def window_lengths(self) -> list[int]:
        if self.windows is None:
            return rolling_windows(self.season, self.weekly)
        return list(self.windows)

    @property
    def calendar_features(self) -> tuple[str, ...]:
        return CALENDAR_FEATURES if self.calendar is None else self.calendar

    @property
    def warm_up(self) -> int:
        """Steps of a series before its first row: the longest lag has its place by then."""
        return max(self.target_lags)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> FeatureSpec:
        tuples = ("series", "lags", "windows", "calendar")
        return cls(
            **{
                **stored,
                **{k: tuple(stored[k]) for k in tuples if stored.get(k) is not None},
            }
        )


@dataclass(frozen=True)
class FeatureMatrix:
    """One row per (series, timestamp) past its series' warm-up."""

    features: pd.DataFrame
    target: np.ndarray
    timestamps: pd.Series
    series: pd.Series | None
    labels: np.ndarray | None
    seasonal_naive: np.ndarray
    season: int


def steps_per_day(step_seconds: float) -> int:
    """The number of steps in one day (1 for daily or coarser data)."""
    return max(1, round(DAY_SECONDS / step_seconds))


def series_step(frame: FeatureFrame) -> float:
    """The typical spacing of consecutive timestamps within a series, in seconds.

    Raises:
        PipelineError: no series has two timestamps, or they do not increase.
    """
    schema = frame.schema
    seconds = typical_step(frame.data, schema.timestamp_column, schema.series_column)
    if seconds is None:
        raise PipelineError("a series needs at least two timestamps")
    if seconds <= 0:
        raise PipelineError("timestamps must increase")
    return seconds


def lag_steps(horizon: int, season: int, weekly: bool = True) -> list[int]:
    """Target lags of a model registered before ``pipeline.features.seasons``: recent ones
    and echoes of ``season`` steps (a day) and a week."""
    candidates = {horizon, horizon + 1, horizon + 2, season, 2 * season}
    candidates |= {7 * season} if weekly else set()
    return sorted(k for k in candidates if k >= horizon)


def naive_lag(horizon: int, season: int) -> int:
    """The seasonal-naive forecast's lag: the latest whole season at least ``horizon`` back."""
    return season * math.ceil(horizon / season)


def rolling_windows(season: int, weekly: bool = True) -> list[int]:
    return [season, 7 * season] if weekly else [season]


def default_spec(frame: FeatureFrame, config: TrainingConfig) -> FeatureSpec:
    """The features a new model gets from this data (up to ``config.end_date``); see
    ``spec_for``."""
    data = frame.data
    stamps = data[frame.schema.timestamp_column]
    if config.end_date is not None:
        data = data[stamps < pd.Timestamp(config.end_date)]
        stamps = data[frame.schema.timestamp_column]
    if config.start_date is not None:  # rows before it are history, for the warm-up
        data = data[stamps >= pd.Timestamp(config.start_date)]
        stamps = data[frame.schema.timestamp_column]
    column = frame.schema.series_column
    # The series with rows from the start on: one that stopped before has nothing to fit.
    series = tuple(sorted(data[column].astype(str).unique())) if column else None
    first, last = (stamps.min(), stamps.max()) if len(stamps) else (None, None)
    return spec_for(series_step(frame), first, last, series, config)


def spec_for(
    step_seconds: float,
    first: pd.Timestamp | None,
    last: pd.Timestamp | None,
    series: tuple[str, ...] | None,
    config: TrainingConfig,
) -> FeatureSpec:
    """The features of a model trained on rows ``first`` .. ``last`` (of the selected
    range) of ``series``: last year's values when the training part holds
    ``YEARLY_MIN_TRAINING`` of rows a year into the data, last week's when it spans
    ``WEEKLY_MIN_TRAINING``, and the series as a category when the set has several."""
    span = last - first if first is not None and last is not None else pd.Timedelta(0)
    training = span * (1 - config.validation_split - config.test_split)
    yearly = bool(training - pd.Timedelta(days=YEARLY_HISTORY_DAYS) >= YEARLY_MIN_TRAINING)
    weekly = bool(training >= WEEKLY_MIN_TRAINING)
    seasons = seasons_of(step_seconds, config.horizon, weekly=weekly, yearly=yearly)
    return FeatureSpec(
        config.horizon,
        steps_per_day(step_seconds),
        config.holidays,
        # last year's date is rarely on a weekly grid: coarse data reads ``year_lag``; and
        # a year back is no older than the horizon for steps of days and long horizons
        yearly=yearly
        and step_seconds < WEEK_SECONDS
        and config.horizon * step_seconds <= 365 * DAY_SECONDS,
        series=series,
        step_seconds=step_seconds,
        weekly=weekly,
        lags=seasons.lags,
        windows=seasons.windows,
        year_lag=seasons.year_lag,
        calendar=seasons.calendar,
    )


def feature_names(spec: FeatureSpec, covariates: list[str]) -> list[str]:
    names = [*spec.calendar_features]
    if spec.holidays:
        names.append(HOLIDAY_FEATURE)
    if spec.series is not None:
        names.append(SERIES_FEATURE)
    names += covariates
    names += [f"lag_{k}" for k in spec.target_lags]
    for window in spec.window_lengths:
        names += [f"roll_mean_{window}", f"roll_std_{window}"]
    if spec.year_lag is not None:
        names.append(f"lag_{spec.year_lag}")
    if spec.yearly:
        names += YEARLY_FEATURES
    return names


def build_features(
    frame: FeatureFrame,
    spec: FeatureSpec,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    require_target: bool = True,
    columns: list[str] | None = None,
) -> FeatureMatrix:
    """Compute features per series, then keep the rows in [start, end) past the warm-up.

    Rows without a target (the future, when serving) are kept only if ``require_target``
    is false. ``columns`` picks the features (a registered model's own list); by default
    those of ``spec``.
    """
    schema = frame.schema
    data = frame.data
    ts_col, target_col, series_col = (
        schema.timestamp_column,
        schema.target_column,
        schema.series_column,
    )
    groups = [g for _, g in data.groupby(series_col, sort=False)] if series_col else [data]
    parts = [_series_features(g, schema.target_column, ts_col, spec) for g in groups]
    table = pd.concat(parts, ignore_index=True)
    if spec.series is not None and series_col:
        positions = {name: float(i) for i, name in enumerate(spec.series)}
        table[SERIES_FEATURE] = table[series_col].map(positions).astype("float64")
    keep = table["_observed"] & table["_position"].ge(spec.warm_up)
    if require_target:
        keep &= table[target_col].notna()
    if start is not None:
        keep &= table[ts_col] >= pd.Timestamp(start)
    if end is not None:
        keep &= table[ts_col] < pd.Timestamp(end)
    table = table[keep].sort_values([ts_col, *([series_col] if series_col else [])], kind="stable")
    table = table.reset_index(drop=True)
    names = columns or feature_names(spec, schema.covariates)
    return FeatureMatrix(
        features=table[names].astype("float64"),
        target=table[target_col].to_numpy(dtype="float64"),
        timestamps=table[ts_col],
        series=table[series_col] if series_col else None,
        labels=table[schema.label_column].to_numpy(dtype=bool) if schema.label_column else None,
        seasonal_naive=table["_seasonal_naive"].to_numpy(dtype="float64"),
        season=spec.season,
    )


def _on_grid(group: pd.DataFrame, ts_col: str, step: pd.Timedelta) -> pd.DataFrame:
    """The series with a row at every step from its first timestamp to its last (added
    rows are marked unobserved), so that a shift by k rows is a shift by k steps.

    A row off that grid (a reading a second late, a day of 23 hours) takes the grid step
    nearest to it, keeping its own timestamp; where several take one step (a series finer
    than the set's step) the nearest is kept and the others are left out: counted by
    rows instead, their lags would read values newer than the horizon. Monthly and
    coarser series, whose steps are calendar months of 28 to 31 days, count rows."""
    stamps = group[ts_col]
    offsets = ((stamps - stamps.iloc[0]) / step).to_numpy()
    places = np.floor(offsets + 0.5).astype(np.int64)  # half up: halves never collide
    on_grid = np.abs(offsets - places).max(initial=0.0) <= 1e-6
    if on_grid and len(group) == places[-1] + 1:
        return group.assign(_observed=True)
    if not on_grid and step >= CALENDAR_STEP:  # months differ in length: a row is a step
        return group.assign(_observed=True)
    if not on_grid:
        nearest = np.lexsort((np.abs(offsets - places), places))
        first = np.unique(places[nearest], return_index=True)[1]
        if len(first) < len(group):
            logger.warning(
                "%d rows of a series share a %s step with another row and are left out",
                len(group) - len(first),
                step,
            )
        group, places = group.iloc[nearest[first]], places[nearest[first]]
    grid = stamps.iloc[0] + step * np.arange(places[-1] + 1)
    full = group.assign(_observed=True).set_index(pd.Index(places)).reindex(range(len(grid)))
    full[ts_col] = full[ts_col].where(full["_observed"].eq(True), pd.Series(grid))
    full["_observed"] = full["_observed"].eq(True)
    return full.reset_index(drop=True)


def _series_features(
    group: pd.DataFrame, target_col: str, ts_col: str, spec: FeatureSpec
) -> pd.DataFrame:
    out = _on_grid(group.sort_values(ts_col).reset_index(drop=True), ts_col, spec.step)
    horizon, season = spec.horizon, spec.season
    stamps = out[ts_col].dt
    seconds = stamps.hour * 3600 + stamps.minute * 60 + stamps.second
    columns: dict[str, pd.Series | np.ndarray] = {
        "_position": pd.Series(np.arange(len(out)), index=out.index),
        "time_of_day": seconds * season // DAY_SECONDS,
        "hour": stamps.hour,
        "day_of_week": stamps.dayofweek,
        "month": stamps.month,
        "day_of_year": stamps.dayofyear,
        "is_weekend": (stamps.dayofweek >= 5).astype(int),
    }
    if spec.holidays:
        columns[HOLIDAY_FEATURE] = holiday_flags(out[ts_col], spec.holidays)
    target = out[target_col]
    for k in [*spec.target_lags, *([spec.year_lag] if spec.year_lag else [])]:
        columns[f"lag_{k}"] = target.shift(k)
    visible = target.shift(horizon)
    for window in spec.window_lengths:
        rolled = visible.rolling(window, min_periods=window // 2)
        columns[f"roll_mean_{window}"] = rolled.mean()
        columns[f"roll_std_{window}"] = rolled.std()
    if spec.yearly:
        columns.update(_last_year(out[ts_col], target, season))
    columns["_seasonal_naive"] = target.shift(naive_lag(horizon, season))
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)


def _last_year(stamps: pd.Series, target: pd.Series, season: int) -> dict[str, np.ndarray]:
    """The value one calendar year before (a fixed-date holiday last year shows here), and
    that value against the week before it: how unusual that day was."""
    history = pd.Series(target.to_numpy(), index=pd.DatetimeIndex(stamps))
    weekly = history.rolling(7 * season, min_periods=season).mean()
    year_before = pd.DatetimeIndex(stamps) - pd.DateOffset(years=1)
    last = history.reindex(year_before).to_numpy()
    level = weekly.reindex(year_before).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(level > 0, last / level, np.nan)
    return {"last_year": last, "last_year_ratio": ratio}
