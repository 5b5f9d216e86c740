"""Two models' forecasts of the same rows scored alike: over the whole period and per
window (a UTC day of the rows forecast), for a promotion's paired comparison
(``domain.promotions``).

Quantile metrics read only the quantiles both models forecast: WQL averages their pinball
losses, the coverage error the distance of each common central interval's coverage from
its nominal level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from domain.promotions import PromotionMetric, Scores
from pipeline.scoring.intervals import central_intervals, quantile_key, weighted_quantile_loss

#: One window of the paired comparison: the rows forecast for one UTC day.
WINDOW = pd.Timedelta(days=1)
WINDOW_LENGTH = "P1D"  # as ISO 8601 says it, for the evidence


@dataclass(frozen=True)
class Forecasts:
    """One model's forecasts of the compared rows: point forecasts, and quantiles (one
    column per entry of ``quantiles``) or None."""

    point: np.ndarray
    bounds: np.ndarray | None = None
    quantiles: tuple[float, ...] = ()

    def columns(self, quantiles: Sequence[float]) -> np.ndarray:
        """The bounds of ``quantiles`` (each one of this model's)."""
        assert self.bounds is not None
        keys = [quantile_key(q) for q in self.quantiles]
        return self.bounds[:, [keys.index(quantile_key(q)) for q in quantiles]]


def common_quantiles(first: Forecasts, second: Forecasts) -> tuple[float, ...]:
    """The quantiles both forecast, ascending."""
    if first.bounds is None or second.bounds is None:
        return ()
    theirs = {quantile_key(q) for q in second.quantiles}
    return tuple(q for q in first.quantiles if quantile_key(q) in theirs)


def missing_for(metric: PromotionMetric, first: Forecasts, second: Forecasts) -> str | None:
    """What the two lack for ``metric`` (None: they can be scored by it)."""
    common = common_quantiles(first, second)
    if metric == "wql" and not common:
        return "the two models forecast no quantile in common: no WQL to compare"
    if metric == "coverage_error" and not central_intervals(common):
        return "the two models have no central interval in common: no coverage to compare"
    return None


def score(
    metric: PromotionMetric, actual: np.ndarray, forecasts: Forecasts, common: Sequence[float]
) -> float:
    """``metric`` of ``forecasts`` over ``actual`` (NaN where undefined: no rows, or WQL of
    actuals summing to 0)."""
    if not len(actual):
        return math.nan
    if metric == "mae":
        return float(np.mean(np.abs(actual - forecasts.point)))
    bounds = forecasts.columns(common)
    if metric == "wql":
        if not np.sum(np.abs(actual)) > 0:
            return math.nan
        return weighted_quantile_loss(actual, bounds, common)
    errors = [
        abs(float(np.mean((actual >= bounds[:, low]) & (actual <= bounds[:, high]))) - level / 100)
        for low, high, level in central_intervals(common)
    ]
    return float(np.mean(errors))


def same_rows_scores(
    metric: PromotionMetric,
    actual: np.ndarray,
    timestamps: np.ndarray,
    challenger: Forecasts,
    champion: Forecasts,
) -> Scores:
    """Both models' ``metric`` over all the rows and per window (``timestamps``: the rows'
    UTC ``datetime64``); windows are labelled by their day (``2025-11-03``)."""
    common = common_quantiles(challenger, champion)
    days = pd.DatetimeIndex(timestamps).floor(WINDOW)
    labels, codes = np.unique(days.to_numpy(), return_inverse=True)
    ours, theirs = [], []
    for code in range(len(labels)):
        rows = codes == code
        ours.append(score(metric, actual[rows], _rows(challenger, rows), common))
        theirs.append(score(metric, actual[rows], _rows(champion, rows), common))
    return Scores(
        metric=metric,
        challenger=score(metric, actual, challenger, common),
        champion=score(metric, actual, champion, common),
        labels=[pd.Timestamp(day).date().isoformat() for day in labels],
        challenger_windows=ours,
        champion_windows=theirs,
    )


def _rows(forecasts: Forecasts, rows: np.ndarray) -> Forecasts:
    bounds = None if forecasts.bounds is None else forecasts.bounds[rows]
    return Forecasts(forecasts.point[rows], bounds, forecasts.quantiles)
