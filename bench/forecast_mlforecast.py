"""Nixtla mlforecast on a benchmark set, set up as its documentation suggests for load data."""

from __future__ import annotations

import math
import time
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from bench.forecast_data import BenchSet, Scores, scores

#: mlforecast's conformal intervals: days of day-ahead windows scored before the test part
#: (fewer where the history is short). 90 gave it its best WQL on the household set
#: (10: 0.331, 30: 0.324, 90: 0.323).
CONFORMAL_WINDOWS = 90


def _mlforecast(bench_set: BenchSet) -> Any:
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd

    h = season = bench_set.steps_per_day
    day = max(season, 2)  # a standard deviation needs two values (daily sets)

    def time_of_day(dates: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(dates.hour * 60 + dates.minute)

    return MLForecast(
        models={"mlforecast": lgb.LGBMRegressor(verbosity=-1)},
        freq=pd.tseries.frequencies.to_offset(pd.Timedelta(days=1) / season),
        lags=sorted({h, h + 1, 2 * season, 7 * season}),
        lag_transforms={
            h: [
                RollingMean(day),
                RollingStd(day),
                RollingMean(7 * season),
                RollingStd(7 * season),
            ]
        },
        date_features=["dayofweek", "month", "dayofyear", time_of_day],
    )


def _long_format(bench_set: BenchSet) -> pd.DataFrame:
    """One row per step (mlforecast refuses gaps): missing steps and targets interpolated."""
    data = bench_set.data.assign(timestamp=pd.to_datetime(bench_set.data["timestamp"]))
    step = pd.Timedelta(days=1) / bench_set.steps_per_day
    grid = pd.date_range(data["timestamp"].min(), data["timestamp"].max(), freq=step)
    data = data.set_index("timestamp").reindex(grid)
    frame = pd.DataFrame(
        {
            "unique_id": "series",
            "ds": grid,
            "y": data[bench_set.target].astype(float).interpolate(limit_direction="both"),
        }
    )
    for column in bench_set.covariates:
        values = data[column].astype(float).interpolate(limit_direction="both")
        frame[column] = values.to_numpy()
    return frame.reset_index(drop=True)


def mlforecast_scores(bench_set: BenchSet, test: pd.DataFrame) -> tuple[Scores, list[str]]:
    """Point forecasts from cross_validation(refit=False) over windows ending with the set;
    quantiles from conformal intervals fitted on the same history, walked forward."""
    from mlforecast.utils import PredictionIntervals

    h = bench_set.steps_per_day
    frame = _long_format(bench_set)
    step = pd.Timedelta(days=1) / h
    last = frame["ds"].max()
    windows = math.ceil((round((last - test["ds"].min()) / step) + 1) / h)
    started = time.perf_counter()
    forecaster = _mlforecast(bench_set)
    cv = forecaster.cross_validation(
        frame, n_windows=windows, h=h, step_size=h, refit=False, static_features=[]
    )
    seconds = time.perf_counter() - started
    first_cutoff = last - step * (windows * h)
    history = frame[frame["ds"] <= first_cutoff]
    conformal = min(CONFORMAL_WINDOWS, (len(history) - 1) // h - 8)
    walked = _mlforecast(bench_set)
    walked.fit(
        history,
        static_features=[],
        prediction_intervals=PredictionIntervals(n_windows=conformal, h=h),
    )
    forecasts = []
    for window in range(windows):
        start = first_cutoff + step * (window * h)
        block = frame[(frame["ds"] > start) & (frame["ds"] <= start + step * h)]
        future = block[["unique_id", "ds", *bench_set.covariates]]
        forecasts.append(
            walked.predict(h, level=[80], X_df=future if bench_set.covariates else None)
        )
        walked.update(block[["unique_id", "ds", "y"]])
    intervals = pd.concat(forecasts)
    scored = test.merge(cv[["ds", "mlforecast"]], on="ds", how="left")
    scored = scored.merge(
        intervals[["ds", "mlforecast-lo-80", "mlforecast-hi-80"]], on="ds", how="left"
    )
    if scored[["mlforecast", "mlforecast-lo-80"]].isna().any().any():
        raise RuntimeError(f"mlforecast missed test timestamps of {bench_set.name}")
    bounds = scored[["mlforecast-lo-80", "mlforecast", "mlforecast-hi-80"]].to_numpy()
    result = scores(scored["actual"].to_numpy(), scored["mlforecast"].to_numpy(), bounds)
    result.seconds = seconds
    return result, [f"mlforecast: {windows} windows, conformal n_windows={conformal}"]
