"""Rolling-origin backtests: how the model would have done, retrained at each origin.

``windows`` origins over the most recent data, ``step`` steps apart, the last one a
horizon before the data ends. Each window trains the job's own recipe (the same boosters'
parameters and rounds, as a scheduled retrain would reuse them) on every row before its
origin, then forecasts the horizon that follows: what a daily retrain would have given.
Features already use only values a horizon old, so the rows after an origin never leak
into its training rows. The intervals use the job's own calibration.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from domain.errors import InvalidRequest, PipelineError
from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import point_metrics
from pipeline.features.preprocess import PreparedData
from pipeline.features.seasons import seasons_of
from pipeline.scoring.intervals import QuantileCalibration, quantile_metrics
from pipeline.scoring.series import naive_mae
from pipeline.store.feature_store import FeatureSetSchema
from pipeline.summaries import BacktestSummary, WindowResult
from pipeline.training.blend import Member, blend_predict, quantile_forecasts
from pipeline.training.boosters import booster_on
from pipeline.training.fitting import trained_params
from pipeline.training.level import Level
from pipeline.training.train import TrainedModel

logger = logging.getLogger(__name__)

#: Distinct timestamps (past the warm-up) the first window must train on, at least.
MIN_TRAIN_STEPS = 100


@dataclass(frozen=True)
class Window:
    number: int
    origin: np.datetime64
    end: np.datetime64  # exclusive


@dataclass(frozen=True)
class Recipe:
    """What each window trains: the model's boosters (point and quantile) with their
    parameters and fixed rounds, the model's quantile calibration, and the level its
    boosters forecast relative to (``pipeline.training.level``)."""

    members: tuple[BoosterRecipe, ...]
    quantile_members: tuple[BoosterRecipe, ...]
    calibration: QuantileCalibration | None
    level: Level | None = None

    @classmethod
    def of(cls, model: TrainedModel) -> Recipe:
        return cls(
            _recipes(model.members),
            _recipes(model.quantile_members),
            model.calibration,
            model.level,
        )


#: One booster to train: objective, LightGBM parameters, rounds, and quantile (or None).
BoosterRecipe = tuple[str, dict[str, Any], int, float | None]


def _recipes(members: Sequence[Member]) -> tuple[BoosterRecipe, ...]:
    return tuple((m.objective, _params(m.booster), m.rounds, m.alpha) for m in members)


def _params(booster: lgb.Booster) -> dict[str, Any]:
    """``booster``'s parameters for one thread, without the rounds it was trained with
    (an early-stopped booster's are its ceiling), which would override the recipe's."""
    return {**trained_params(booster), "num_threads": 1}


def _train(
    recipes: Sequence[BoosterRecipe], data: PreparedData, X: np.ndarray, y: np.ndarray
) -> tuple[Member, ...]:
    return tuple(
        Member(objective, booster_on(data, X, y, params, rounds), rounds, quantile)
        for objective, params, rounds, quantile in recipes
    )


@dataclass(frozen=True)
class BacktestResult:
    windows: list[WindowResult]

    def metrics(self) -> dict[str, float]:
        """``backtest_<metric>_mean`` and ``_std`` over the windows that scored."""
        names = sorted({name for w in self.windows for name in w.metrics})
        out: dict[str, float] = {"backtest_windows": float(len(self.windows))}
        for name in names:
            values = np.array([w.metrics[name] for w in self.windows if name in w.metrics])
            out[f"backtest_{name}_mean"] = float(values.mean())
            out[f"backtest_{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return out

    def summary(self) -> BacktestSummary:
        return BacktestSummary(windows=list(self.windows), metrics=self.metrics())


def required_steps(warm_up: int, horizon: int, windows: int, step: int) -> int:
    """Steps of history one series needs for the backtest: the warm-up, the first window's
    training rows, and the windows themselves."""
    return warm_up + MIN_TRAIN_STEPS + (windows - 1) * step + horizon


def check_fits(config: TrainingConfig, schema: FeatureSetSchema, step_seconds: float) -> None:
    """Whether the job's backtest windows fit in the feature set's selected date range.

    Raises:
        InvalidRequest: on ``config.backtest``, with the steps needed and available.
    """
    if config.backtest is None:
        return
    step_length = timedelta(seconds=step_seconds)
    first, last = pd.Timestamp(schema.start), pd.Timestamp(schema.end)
    if config.start_date is not None:
        first = max(first, pd.Timestamp(config.start_date))
    if config.end_date is not None:
        last = min(last, pd.Timestamp(config.end_date) - step_length)
    lags = seasons_of(step_seconds, config.horizon, weekly=True, yearly=False).lags
    windows, step = config.backtest.windows, config.backtest_step
    needed = required_steps(max(lags), config.horizon, windows, step)
    available = max(0, math.floor((last - first).total_seconds() / step_seconds) + 1)
    if needed > available:
        raise InvalidRequest(
            "config.backtest",
            f"{windows} windows {step} steps apart, each forecasting {config.horizon} steps, "
            f"need {needed} steps of data (a {max(lags)}-step warm-up "
            f"and {MIN_TRAIN_STEPS} training steps before the first origin); the selected "
            f"range of {schema.name!r} has {available}",
        )
    spanned = (windows - 1) * step + config.horizon
    tested = round(available * config.test_split)  # about: the warm-up is not counted
    if spanned > tested:
        raise InvalidRequest(
            "config.backtest",
            f"{windows} windows {step} steps apart, each forecasting {config.horizon} steps, "
            f"span {spanned} steps, more than the test part's {tested} ({config.test_split:g} "
            f"of {available}): windows before it would be scored on rows that chose the "
            "model's rounds and intervals (a larger test_split makes room)",
        )


def plan(
    timestamps: np.ndarray,
    horizon: int,
    windows: int,
    step: int,
    test_start: np.datetime64 | None = None,
) -> list[Window]:
    """The windows over the sorted distinct ``timestamps`` of the usable rows, inside the
    test part from ``test_start`` on, if given: a window over the validation part would be
    scored on the rows that chose the model's rounds and calibrated its intervals.

    Raises:
        PipelineError: the first origin leaves fewer than ``MIN_TRAIN_STEPS`` before it,
            or falls before ``test_start``.
    """
    stamps = np.unique(timestamps)
    first = len(stamps) - horizon - (windows - 1) * step
    if first < MIN_TRAIN_STEPS:
        raise PipelineError(
            f"the backtest's {windows} windows ({step} steps apart, {horizon} each) leave "
            f"{max(first, 0)} timestamps to train the first one on; need {MIN_TRAIN_STEPS}"
        )
    if test_start is not None and stamps[first] < test_start:
        tested = int((stamps >= test_start).sum())
        fit = max(0, (tested - horizon) // step + 1)
        raise PipelineError(
            f"the backtest's {windows} windows ({step} steps apart, {horizon} each) start "
            f"before the test part ({tested} timestamps), on rows that chose the model's "
            f"rounds and intervals; {fit} fit in it (a larger test_split makes room)"
        )
    planned = []
    for number in range(windows):
        start = first + number * step
        stop = start + horizon
        end = stamps[stop] if stop < len(stamps) else stamps[-1] + np.timedelta64(1, "ns")
        planned.append(Window(number, stamps[start], end))
    return planned


def all_rows(data: PreparedData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features, target, timestamps and seasonal-naive values of every part, in time order."""
    parts = (data.train, data.validation, data.test)
    return (
        np.vstack([p.X for p in parts]),
        np.concatenate([p.y for p in parts]),
        all_timestamps(data),
        np.concatenate([p.seasonal_naive for p in parts]),
    )


def all_timestamps(data: PreparedData) -> np.ndarray:
    """The timestamps of ``all_rows``, without copying its features."""
    return np.concatenate([p.timestamps for p in (data.train, data.validation, data.test)])


def labelled(data: PreparedData) -> np.ndarray:
    """Which rows of ``all_rows`` are labelled as anomalies: a window's model is not fitted
    on them, as the job's was not, but they are scored."""
    return ~np.concatenate([p.normal for p in (data.train, data.validation, data.test)])


def run_window(data: PreparedData, recipe: Recipe, window: Window) -> WindowResult:
    """Train the recipe on the rows before the window's origin; score its horizon."""
    started = time.perf_counter()
    X, y, stamps, naive = all_rows(data)
    before = (stamps < window.origin) & ~labelled(data)
    inside = (stamps >= window.origin) & (stamps < window.end)
    metrics: dict[str, float] = {}
    if inside.any():
        level = recipe.level
        fitted_y = y[before] - level.of(X[before]) if level is not None else y[before]
        members = _train(recipe.members, data, X[before], fitted_y)
        predicted = blend_predict(members, X[inside])
        if level is not None:
            predicted = predicted + level.of(X[inside])
        scale = naive_mae(y[before], naive[before])
        metrics = point_metrics(y[inside], predicted, naive[inside], scale)
        if recipe.calibration is not None:
            boosters = _train(recipe.quantile_members, data, X[before], fitted_y)
            bounds = quantile_forecasts(recipe.calibration, boosters, X[inside], predicted, level)
            assert bounds is not None
            metrics.update(quantile_metrics(y[inside], bounds, recipe.calibration.quantiles))
    return WindowResult(
        number=window.number,
        origin=str(window.origin),
        end=str(window.end),
        train_rows=int(before.sum()),
        test_rows=int(inside.sum()),
        seconds=time.perf_counter() - started,
        metrics=metrics,
    )
