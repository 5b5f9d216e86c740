"""Intervals that follow their recent misses.

A calibration made once, on the validation part, is right on average and wrong for weeks
at a time: the validation part's windows, calibrated together, each cover a share that
may be far from the nominal one. So a served interval is rescaled by how its own recent
forecasts did: every quantile's distance from the point forecast is multiplied by the
factor that would have made the central interval (``ADAPTED_LEVEL``) cover its nominal
share of the series' actuals in the ``window`` before the forecast's origin (a horizon
before it), counting only forecasts out of sample (of rows after those the model was
fitted on). Few such actuals pull the factor towards 1 (``prior``'s worth of rows weigh
on the calibration's side), none leave the calibrated interval as it is. A cadence of
which the window holds fewer than ``MIN_WINDOW_STEPS`` steps (months, quarters) keeps the
calibrated intervals: one miss would rescale the next month's, and served monthly
intervals had covered 0.67 of a nominal 0.80 where the static ones covered 0.77.

This is a rolling-window recalibration of split conformal prediction on the interval's
scale, the stateless cousin of adaptive conformal inference (Gibbs and Candès, 2021): it
needs nothing but the actuals, so evaluation, predictions and batch forecasts rescale
alike from the same rows. On the real load sets a 28-day window with a week's prior
kept the coverage nearer the nominal share than the static intervals, at the same
weighted quantile loss (measured by bench/adaptive_intervals.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.scoring.intervals import central_intervals, conformal_level

#: The central interval (in %) whose misses set the scale; the first one if it is missing.
ADAPTED_LEVEL = 80
DAY = pd.Timedelta(days=1)
#: Window values taken together when quantiles are computed (about 32 MB).
QUANTILE_BATCH = 1 << 22
#: Steps the window must hold for misses to rescale an interval (a weekly cadence's 4).
MIN_WINDOW_STEPS = 4


@dataclass(frozen=True)
class RecentMisses:
    """How far back (``window``) the misses that rescale an interval reach, and how much
    of the calibration's own verdict (a factor of 1) they are weighed with: ``prior``'s
    worth of rows."""

    window: pd.Timedelta = 28 * DAY
    prior: pd.Timedelta = 7 * DAY

    def adapt(self, rows: ForecastRows, quantiles: tuple[float, ...]) -> np.ndarray:
        """``rows.bounds`` rescaled row by row (the ``rows.wanted`` ones), each series by
        its own recent misses."""
        interval = adapted_interval(quantiles)
        if interval is None or not len(rows.point) or self.window < MIN_WINDOW_STEPS * rows.step:
            return rows.bounds
        low, high, coverage = interval
        ratios = miss_ratios(rows.actual, rows.point, rows.bounds, low, high)
        ratios[rows.timestamps < rows.out_of_sample_from.to_datetime64()] = np.nan
        return rescaled(rows.point, rows.bounds, self.scales(rows, ratios, coverage))

    def scales(self, rows: ForecastRows, ratios: np.ndarray, coverage: float) -> np.ndarray:
        """One factor per row, from its series' ``ratios`` (NaN: unknown or fitted on)
        at least ``rows.lead`` before it and within ``window`` of that origin: their
        ``coverage`` conformal quantile, its logarithm shrunk towards 0 by
        ``n / (n + prior rows)``. Forecasts without error leave the factor at 1: an
        interval of no width is a promise no forecast keeps."""
        series = (
            pd.factorize(rows.series)[0]
            if rows.series is not None
            else np.zeros(len(ratios), dtype=np.int64)
        )
        order = np.lexsort((rows.timestamps, series))  # by series, then time
        known_rows = order[~np.isnan(ratios[order])]
        by_series, known_by_series = series[order], series[known_rows]
        starts = np.zeros(len(ratios), dtype=np.int64)
        ends = np.zeros(len(ratios), dtype=np.int64)
        for key in np.unique(series):
            first, last = np.searchsorted(known_by_series, [key, key + 1])
            stamps = pd.DatetimeIndex(rows.timestamps[known_rows[first:last]])
            mine = order[slice(*np.searchsorted(by_series, [key, key + 1]))]
            origins = pd.DatetimeIndex(rows.timestamps[mine]) - rows.lead
            ends[mine] = first + stamps.searchsorted(origins, side="right")
            starts[mine] = first + stamps.searchsorted(origins - self.window, side="right")
        counts = ends - starts
        if rows.wanted is not None:
            counts[~rows.wanted] = 0
        needed = window_quantiles(ratios[known_rows], starts, counts, coverage)
        usable = (counts > 0) & (needed > 0)
        weight = counts / (counts + self.prior / rows.step)
        return np.where(usable, np.exp(weight * np.log(np.where(usable, needed, 1.0))), 1.0)

    def as_dict(self) -> dict[str, float]:
        return {"window_days": self.window / DAY, "prior_days": self.prior / DAY}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecentMisses:
        return cls(DAY * float(data["window_days"]), DAY * float(data["prior_days"]))


@dataclass(frozen=True)
class ForecastRows:
    """Forecasts with their quantiles (``bounds``, one column per quantile) and actuals
    (NaN where unknown), on rows ``step`` apart, each forecast ``lead`` before its row;
    rows before ``out_of_sample_from`` were fitted on. Only the ``wanted`` rows' bounds
    are rescaled (None: every row's); the others only lend their misses."""

    point: np.ndarray
    bounds: np.ndarray
    actual: np.ndarray
    timestamps: np.ndarray
    series: np.ndarray | None
    lead: pd.Timedelta
    step: pd.Timedelta
    out_of_sample_from: pd.Timestamp
    wanted: np.ndarray | None = None


def window_quantiles(
    values: np.ndarray, starts: np.ndarray, counts: np.ndarray, coverage: float
) -> np.ndarray:
    """The ``coverage`` conformal quantile of each window ``values[start:start + count]``
    (NaN where empty); an infinite one is its window's largest finite value (1 if none).
    Windows of one length are taken together, a bounded batch at a time."""
    out = np.full(len(starts), np.nan)
    for count in np.unique(counts[counts > 0]):
        at = np.flatnonzero(counts == count)
        windows = np.lib.stride_tricks.sliding_window_view(values, int(count))
        level = conformal_level(int(count), coverage)
        for batch in np.array_split(at, -(-len(at) * int(count) // QUANTILE_BATCH)):
            with np.errstate(invalid="ignore"):
                out[batch] = np.quantile(windows[starts[batch]], level, axis=1)
    for i in np.flatnonzero((counts > 0) & ~np.isfinite(out)):
        window = values[starts[i] : starts[i] + counts[i]]
        finite = window[np.isfinite(window)]
        out[i] = float(np.max(finite)) if len(finite) else 1.0
    return out


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
