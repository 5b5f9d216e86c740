"""Nixtla mlforecast on a benchmark set, set up as its documentation suggests: on sub-daily
load data direct lags of at least the horizon; on daily and weekly data its recursive
default (short lags, rolling means of the last value, date features)."""

from __future__ import annotations

import math
import time
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from bench.forecast_data import BenchSet, Scores, scores

#: mlforecast's conformal intervals: horizons' windows scored before the test part (fewer
#: where the history is short). 90 gave it its best WQL on the household set (10: 0.331,
#: 30: 0.324, 90: 0.323).
CONFORMAL_WINDOWS = 90
#: Daily sets: lags 1-7 and the same weekday two to four weeks back, means over a week and
#: four weeks of the last value.
DAILY_LAGS = (1, 2, 3, 4, 5, 6, 7, 14, 21, 28)
DAILY_WINDOWS = (7, 28)
#: Weekly sets: the last four weeks and, with three years of history before the test part,
#: the same week a year back; means over four weeks and a quarter of the last value.
WEEKLY_LAGS = (1, 2, 3, 4)
YEAR_OF_WEEKS = 52
WEEKLY_WINDOWS = (4, 13)


def _lags(bench_set: BenchSet, history_steps: int) -> list[int]:
    """The target lags; ``history_steps``: the shortest series' steps before the test
    part (whether a weekly set has room for the year-old lag)."""
    h, season = bench_set.horizon, bench_set.steps_per_day
    if season > 1:
        return sorted({h, h + 1, 2 * season, 7 * season})
    if bench_set.step < pd.Timedelta(weeks=1):
        return list(DAILY_LAGS)
    year = [YEAR_OF_WEEKS] if history_steps >= 3 * YEAR_OF_WEEKS else []
    return [*WEEKLY_LAGS, *year]


def _mlforecast(bench_set: BenchSet, lags: list[int]) -> Any:
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd

    model = {"mlforecast": lgb.LGBMRegressor(verbosity=-1)}
    freq = pd.tseries.frequencies.to_offset(bench_set.step)
    if bench_set.steps_per_day == 1:
        daily = bench_set.step < pd.Timedelta(weeks=1)
        windows = DAILY_WINDOWS if daily else WEEKLY_WINDOWS
        return MLForecast(
            models=model,
            freq=freq,
            lags=lags,
            lag_transforms={1: [RollingMean(w) for w in windows]},
            date_features=["dayofweek", "month", "dayofyear"] if daily else ["month", "dayofyear"],
        )
    h, season = bench_set.horizon, bench_set.steps_per_day

    def time_of_day(dates: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(dates.hour * 60 + dates.minute)

    return MLForecast(
        models=model,
        freq=freq,
        lags=lags,
        lag_transforms={
            h: [
                RollingMean(season),
                RollingStd(season),
                RollingMean(7 * season),
                RollingStd(7 * season),
            ]
        },
        date_features=["dayofweek", "month", "dayofyear", time_of_day],
    )


def _long_format(bench_set: BenchSet) -> pd.DataFrame:
    """One row per series and step (mlforecast refuses gaps), each series from its first
    timestamp to the set's last, so that every series shares the cutoffs: missing steps
    and targets interpolated (carried at the ends)."""
    data = bench_set.data.assign(
        timestamp=pd.to_datetime(bench_set.data["timestamp"]), unique_id=bench_set.ids()
    )
    step, last = bench_set.step, data["timestamp"].max()
    frames = []
    for key, rows in data.groupby("unique_id", sort=True):
        grid = pd.date_range(rows["timestamp"].min(), last, freq=step)
        rows = rows.set_index("timestamp").reindex(grid)
        frame = pd.DataFrame({"unique_id": key, "ds": grid})
        for column, name in ((bench_set.target, "y"), *((c, c) for c in bench_set.covariates)):
            values = rows[column].astype(float).interpolate(limit_direction="both")
            frame[name] = values.to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def mlforecast_scores(bench_set: BenchSet, test: pd.DataFrame) -> tuple[Scores, list[str]]:
    """Point forecasts from cross_validation(refit=False) over windows of the horizon
    ending with the set; quantiles from conformal intervals fitted on the same history,
    walked forward. ``test``: the service's test part (``unique_id``, ``ds``, ``actual``),
    every pair of which is scored."""
    from mlforecast.utils import PredictionIntervals

    h, step = bench_set.horizon, bench_set.step
    frame = _long_format(bench_set)
    last = frame["ds"].max()
    windows = math.ceil((round((last - test["ds"].min()) / step) + 1) / h)
    first_cutoff = last - step * (windows * h)
    history = frame[frame["ds"] <= first_cutoff]
    shortest = int(history.groupby("unique_id").size().min())
    lags = _lags(bench_set, shortest)
    started = time.perf_counter()
    cv = _mlforecast(bench_set, lags).cross_validation(
        frame, n_windows=windows, h=h, step_size=h, refit=False, static_features=[]
    )
    seconds = time.perf_counter() - started
    # The rows the conformal windows' model is fitted on: sub-daily, 8 days of steps (as
    # tuned); daily and weekly, half the history and at least twice the longest lag.
    reserve = 8 * h if bench_set.steps_per_day > 1 else max(2 * max(lags), shortest // 2)
    conformal = min(CONFORMAL_WINDOWS, (shortest - 1 - reserve) // h)
    walked = _mlforecast(bench_set, lags)
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
    keys = ["unique_id", "ds"]
    scored = test.merge(cv[[*keys, "mlforecast"]], on=keys, how="left")
    scored = scored.merge(
        intervals[[*keys, "mlforecast-lo-80", "mlforecast-hi-80"]], on=keys, how="left"
    )
    if scored[["mlforecast", "mlforecast-lo-80"]].isna().any().any():
        raise RuntimeError(f"mlforecast missed test (series, timestamp) pairs of {bench_set.name}")
    bounds = scored[["mlforecast-lo-80", "mlforecast", "mlforecast-hi-80"]].to_numpy()
    result = scores(scored["actual"].to_numpy(), scored["mlforecast"].to_numpy(), bounds)
    result.seconds = seconds
    return result, [f"mlforecast: {windows} windows, conformal n_windows={conformal}"]
