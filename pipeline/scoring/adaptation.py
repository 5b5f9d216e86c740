"""Intervals that follow their recent misses.

A calibration made once, on the validation part, is right on average and wrong for weeks
at a time: the P10-P90 interval covered anywhere from 0.60 to 0.91 of one calibration
window (bench/README.md). So a served interval is rescaled by how its own recent
forecasts did: every quantile's distance from the point forecast is multiplied by the
factor that would have made the central interval (``ADAPTED_LEVEL``) cover its nominal
share of the series' actuals in the ``window`` before the forecast's origin (a horizon
before it), counting only forecasts out of sample (of rows after those the model was
fitted on). Few such actuals pull the factor towards 1 (``prior``'s worth of rows weigh
on the calibration's side), none leave the calibrated interval as it is.

This is a rolling-window recalibration of split conformal prediction on the interval's
scale, the stateless cousin of adaptive conformal inference (Gibbs and Candès, 2021): it
needs nothing but the actuals, so evaluation, predictions and batch forecasts rescale
alike from the same rows. On the benchmark's eight sets a 28-day window with a week's
prior covered 0.78-0.81 (a Christmas week aside) where the static intervals covered
0.75-0.86, at the same weighted quantile loss (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.scoring.intervals import central_intervals, conformal_quantile

#: The central interval (in %) whose misses set the scale; the first one if it is missing.
ADAPTED_LEVEL = 80
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class RecentMisses:
    """How far back (``window``) the misses that rescale an interval reach, and how much
    of the calibration's own verdict (a factor of 1) they are weighed with: ``prior``'s
    worth of rows."""

    window: pd.Timedelta = 28 * DAY
    prior: pd.Timedelta = 7 * DAY

    def scale(self, ratios: np.ndarray, coverage: float, prior_rows: float) -> float:
        """The factor for forecasts after actuals whose ``miss_ratios`` are ``ratios``:
        their ``coverage`` conformal quantile, its logarithm shrunk towards 0 by
        ``n / (n + prior_rows)``."""
        n = len(ratios)
        if n == 0:
            return 1.0
        needed = conformal_quantile(ratios, coverage)
        if not np.isfinite(needed):
            finite = ratios[np.isfinite(ratios)]
            needed = float(np.max(finite)) if len(finite) else 1.0
        if needed <= 0:
            return 1.0
        return float(np.exp(n / (n + prior_rows) * np.log(needed)))

    def scales(
        self,
        timestamps: np.ndarray,
        ratios: np.ndarray,
        coverage: float,
        lead: pd.Timedelta,
        step: pd.Timedelta,
    ) -> np.ndarray:
        """One factor per row of one series (``timestamps`` sorted; ``ratios`` its own
        forecasts', NaN where the actual is unknown or was fitted on), each from the
        known rows at least ``lead`` before it and within ``window`` of that origin."""
        stamps = pd.DatetimeIndex(timestamps)
        origins = stamps - lead
        ends = stamps.searchsorted(origins, side="right")
        starts = stamps.searchsorted(origins - self.window, side="right")
        known = ~np.isnan(ratios)
        prior_rows = self.prior / step
        out = np.ones(len(stamps))
        for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
            out[i] = self.scale(ratios[start:end][known[start:end]], coverage, prior_rows)
        return out

    def adapt(self, rows: ForecastRows, quantiles: tuple[float, ...]) -> np.ndarray:
        """``rows.bounds`` rescaled row by row, each series by its own recent misses."""
        interval = adapted_interval(quantiles)
        if interval is None:
            return rows.bounds
        low, high, coverage = interval
        ratios = miss_ratios(rows.actual, rows.point, rows.bounds, low, high)
        ratios[rows.timestamps < rows.out_of_sample_from.to_datetime64()] = np.nan
        series = rows.series if rows.series is not None else np.zeros(len(rows.point))
        scale = np.ones(len(rows.point))
        for key in pd.unique(series):
            at = np.flatnonzero(series == key)
            at = at[np.argsort(rows.timestamps[at], kind="stable")]
            scale[at] = self.scales(rows.timestamps[at], ratios[at], coverage, rows.lead, rows.step)
        return rescaled(rows.point, rows.bounds, scale)

    def as_dict(self) -> dict[str, float]:
        return {"window_days": self.window / DAY, "prior_days": self.prior / DAY}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecentMisses:
        return cls(DAY * float(data["window_days"]), DAY * float(data["prior_days"]))


@dataclass(frozen=True)
class ForecastRows:
    """Forecasts with their quantiles (``bounds``, one column per quantile) and actuals
    (NaN where unknown), on rows ``step`` apart, each forecast ``lead`` before its row;
    rows before ``out_of_sample_from`` were fitted on."""

    point: np.ndarray
    bounds: np.ndarray
    actual: np.ndarray
    timestamps: np.ndarray
    series: np.ndarray | None
    lead: pd.Timedelta
    step: pd.Timedelta
    out_of_sample_from: pd.Timestamp


def adapted_interval(quantiles: tuple[float, ...]) -> tuple[int, int, float] | None:
    """The lower and upper columns of the central interval whose misses set the scale,
    and its nominal coverage; None without a central interval."""
    intervals = central_intervals(quantiles)
    if not intervals:
        return None
    low, high, _ = next((i for i in intervals if i[2] == ADAPTED_LEVEL), intervals[0])
    return low, high, quantiles[high] - quantiles[low]


def miss_ratios(
    actual: np.ndarray, point: np.ndarray, bounds: np.ndarray, low: int, high: int
) -> np.ndarray:
    """How far each actual fell from the point forecast, as a share of the interval's
    half-width on its side: above 1 it missed; NaN where the actual is unknown. An
    interval of no width on that side gives 0 for an actual on the point, else infinity."""
    above = actual >= point
    half = np.where(above, bounds[:, high] - point, point - bounds[:, low])
    distance = np.abs(actual - point)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(half > 0, distance / half, np.where(distance > 0, np.inf, 0.0))
    return np.where(np.isnan(actual), np.nan, ratios)


def rescaled(point: np.ndarray, bounds: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``bounds`` with every quantile's distance from ``point`` multiplied by ``scale``."""
    out: np.ndarray = point[:, None] + scale[:, None] * (bounds - point[:, None])
    return out
