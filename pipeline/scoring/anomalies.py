"""Anomaly scores that mean the same out of sample, and the threshold a false-alarm rate
sets.

A residual is first measured against its own series' recent residuals: its distance from
its series' median residual over the validation part (a global model's bias on one
series of many is that series' normal, not an anomaly), over the robust scale (MAD) of
the series' residuals in the trailing ``window`` steps before it. The scale follows the
series as the served intervals follow their misses (``pipeline.scoring.adaptation``): a
noisier week raises it, so wider residuals out of sample do not turn into a flood of
flags. Until a series has
residuals enough to read (its first rows, or rows the model was fitted on), the scale is
that series' own over the validation part: a large meter's rows are not measured against
the small meters' errors.

That ratio is then calibrated on the validation part, out of sample: its empirical tail
probability in the bulk, and beyond the 95th percentile a generalized Pareto tail fitted to
the exceedances (peaks over threshold, as SPOT does: Siffer et al., KDD 2017), since an
alarm a week of 5-minute rows is a 1-in-2016 event that no validation part holds often
enough to count. The exceedances are declustered first (Coles, *An Introduction to
Statistical Modeling of Extreme Values*, 2001, 5.3.2): a run of them is one cluster, as
its alarms are one event, and the tail is fitted to the clusters' peaks, at the clusters'
share of rows. An incident in the validation part is then one peak of the fit, not the
hundreds of rows that would make the tail and mute every later alarm. With fewer than
``MIN_EXCEEDANCES`` peaks (a short validation part) the tail is exponential, its scale
read from their median, which one incident among them does not move.
The score is the standard-normal deviate of that probability, two-sided (Merlion's
calibrated scores): 3 means as rare as a 3-sigma residual of a normal series.

The threshold is the score whose tail probability gives ``alarms_per_week`` flags a week
at the series' cadence, so a user states how many alarms a week they can read, not a z.
Past the bulk that rate counts clusters of exceedances, each one event. Unstated, it is
half an alarm a week, but never more than one in ``MIN_ROWS_PER_ALARM`` rows: at a daily
cadence half a week's alarm is one day in 14, a threshold inside the residuals' bulk
(1.8 sigma) whose flags run into each other for days.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.scoring.events import step_positions
from pipeline.scoring.labelled import WEEK
from pipeline.scoring.series import rows_by_series

MAD_TO_SIGMA = 1.4826
#: The bulk's upper quantile, above which the tail is a generalized Pareto fit.
TAIL_FROM = 0.95
#: Below this many clusters' peaks the tail is exponential (shape 0), the fit too loose.
MIN_EXCEEDANCES = 20
#: The stored bulk: the ratio's quantiles at these probabilities.
BULK_PROBABILITIES = np.linspace(0.0, TAIL_FROM, 96)
#: Bounds of the fitted shape: beyond them one outlier in validation decides the tail.
SHAPE_BOUNDS = (-0.5, 0.5)
#: Scores are capped here: past it a tail probability underflows.
MAX_SCORE = 30.0
#: The alarms a week per series a job gets unless it states its own ...
DEFAULT_ALARMS_PER_WEEK = 0.5
#: ... at most one alarm in this many rows (2.6 sigma): the bound at steps longer than
#: about 3.4 hours.
MIN_ROWS_PER_ALARM = 100


def default_alarms_per_week(step: pd.Timedelta) -> float:
    """The alarms a week of a job that states none, at a cadence of ``step``."""
    return min(DEFAULT_ALARMS_PER_WEEK, WEEK / step / MIN_ROWS_PER_ALARM)


def scale_window(steps_per_day: int) -> int:
    """Trailing steps of residuals a score's scale reads: a week of steps, at least 28."""
    return max(7 * steps_per_day, 28)


@dataclass(frozen=True)
class AnomalyCalibration:
    """How a residual becomes a calibrated score, and the score that raises an alarm."""

    center: float
    scale: float
    window: int
    bulk: tuple[float, ...]
    tail_from: float
    tail_scale: float
    tail_shape: float
    threshold: float
    alarms_per_week: float
    #: The share of rows past the bulk where a cluster of exceedances peaks (models stored
    #: before clusters were counted: every exceedance, the bulk's upper share).
    tail_mass: float = 1 - TAIL_FROM
    #: Each series' scale over the validation part, read where its trailing residuals are
    #: too few (None, or a series not in it: ``scale``, all series' together).
    series_scales: dict[str, float] | None = None
    #: Each series' median residual over the validation part (None, or a series not in
    #: it: ``center``, all series' together; models stored before it: ``center``).
    series_centers: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bulk": list(self.bulk)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnomalyCalibration:
        return cls(**{**data, "bulk": tuple(data["bulk"])})

    def ratios(
        self,
        residuals: np.ndarray,
        series: np.ndarray | None = None,
        in_sample: np.ndarray | None = None,
    ) -> np.ndarray:
        """|residual - its series' center| over its series' trailing robust scale (NaN
        residuals, the future, are NaN; they and ``in_sample`` ones are left out of the
        scale)."""
        rows = len(residuals)
        center = per_series(self.center, self.series_centers, series, rows)
        own = per_series(self.scale, self.series_scales, series, rows)
        scale = trailing_scale(residuals, center, own, self.window, series, in_sample)
        ratios: np.ndarray = np.abs(residuals - center) / scale
        return ratios

    def scores(
        self,
        residuals: np.ndarray,
        series: np.ndarray | None = None,
        in_sample: np.ndarray | None = None,
    ) -> np.ndarray:
        """Calibrated scores, standard-normal deviates of each residual's tail probability
        (0 for a typical residual); rows must be in time order within each series, and
        ``in_sample`` marks residuals of rows the model was fitted on (too small to read a
        scale from)."""
        return self.score_ratios(self.ratios(residuals, series, in_sample))

    def score_ratios(self, ratios: np.ndarray) -> np.ndarray:
        probability = self.tail_probability(ratios)
        with np.errstate(divide="ignore"):
            scores = stats.norm.isf(probability / 2)
        scores = np.clip(scores, 0.0, MAX_SCORE)
        scores[np.isnan(ratios)] = np.nan
        return np.asarray(scores, dtype=float)

    def tail_probability(self, ratios: np.ndarray) -> np.ndarray:
        """P(ratio >= r) as the validation part saw it: the bulk's quantiles interpolated,
        the fitted tail past them."""
        bulk = np.interp(ratios, self.bulk, 1 - BULK_PROBABILITIES)
        excess = np.maximum(ratios - self.bulk[-1], 0.0)
        tail = self.tail_mass * _survival(excess, self.tail_scale, self.tail_shape)
        return np.where(ratios > self.bulk[-1], tail, bulk)


def calibrate(
    residuals: np.ndarray,
    series: np.ndarray | None,
    step: pd.Timedelta,
    steps_per_day: int,
    alarms_per_week: float | None,
    gap: int = 3,
    timestamps: np.ndarray | None = None,
) -> AnomalyCalibration:
    """The calibration of out-of-sample (validation) residuals, in time order within each
    series, for ``alarms_per_week`` alarms a week at a cadence of ``step`` (None: the
    default for that cadence); exceedances ``gap`` steps apart or closer are one cluster
    (the detector's ``event_gap``), steps counted on the ``timestamps`` (None: rows)."""
    if alarms_per_week is None:
        alarms_per_week = default_alarms_per_week(step)
    residuals = np.asarray(residuals, dtype=float)
    center = float(np.nanmedian(residuals))
    series_centers = None if series is None else _series_medians(residuals, series)
    centers = per_series(center, series_centers, series, len(residuals))
    deviations = np.abs(residuals - centers)
    scale = MAD_TO_SIGMA * float(np.nanmedian(deviations)) or float(np.nanstd(residuals)) or 1.0
    window = scale_window(steps_per_day)
    series_scales = None
    if series is not None:
        medians = _series_medians(deviations, series)
        series_scales = {name: MAD_TO_SIGMA * value for name, value in medians.items() if value}
    own = per_series(scale, series_scales, series, len(residuals))
    ratios = deviations / trailing_scale(residuals, centers, own, window, series)
    known = ratios[np.isfinite(ratios)]
    bulk = np.maximum.accumulate(np.quantile(known, BULK_PROBABILITIES))
    positions = None if timestamps is None else step_counts(timestamps, step, series)
    peaks = cluster_peaks(ratios, bulk[-1], series, gap, positions)
    tail_scale, tail_shape = _fit_tail(peaks - bulk[-1])
    exceedances = int(np.sum(known > bulk[-1]))
    # The bulk's upper share of rows lies past it, and clusters peak in a share of those;
    # tied ratios (a target in whole units) can leave well under that share strictly past
    # it, and then the share measured is the one that holds. (A few rows more than the
    # share past the quantile are its granularity on a short validation part.)
    past = min(1 - TAIL_FROM, exceedances / len(known)) if exceedances else 1 - TAIL_FROM
    tail_mass = past * (len(peaks) / exceedances if exceedances else 1.0)
    rate = min(alarms_per_week * (step / WEEK), 1.0)
    return AnomalyCalibration(
        center=center,
        scale=scale,
        window=window,
        bulk=tuple(float(value) for value in bulk),
        tail_from=TAIL_FROM,
        tail_scale=tail_scale,
        tail_shape=tail_shape,
        threshold=float(min(stats.norm.isf(rate / 2), MAX_SCORE)),
        alarms_per_week=alarms_per_week,
        tail_mass=tail_mass,
        series_scales=series_scales,
        series_centers=series_centers,
    )


def _series_medians(values: np.ndarray, series: np.ndarray) -> dict[str, float]:
    """Each series' median of ``values`` (a series with none finite is left out)."""
    names = pd.Series(np.asarray(series)).astype(str).to_numpy()
    medians = pd.Series(values).groupby(names, sort=False).median()
    return {str(name): float(value) for name, value in medians.items() if np.isfinite(value)}


def per_series(
    pooled: float, by_series: dict[str, float] | None, series: np.ndarray | None, rows: int
) -> np.ndarray:
    """Each row's value of its series (a center, or the scale read where its trailing
    residuals are too few), or ``pooled`` (all series' together) for a series without
    one."""
    if series is None or not by_series:
        return np.full(rows, pooled)
    names = pd.Series(np.asarray(series)).astype(str)
    return names.map(by_series).fillna(pooled).to_numpy(dtype=float)


def step_counts(
    timestamps: np.ndarray, step: pd.Timedelta, series: np.ndarray | None
) -> np.ndarray:
    """Each row's steps since its series' first row, counted as the detector counts them
    (``step_positions``: a hole counts the time it lasts); rows in time order per series."""
    keys = np.zeros(len(timestamps)) if series is None else np.asarray(series)
    stamps = pd.DatetimeIndex(timestamps)
    counts = np.zeros(len(stamps), dtype=np.int64)
    for rows in rows_by_series(keys).values():
        counts[rows] = step_positions(stamps[rows], step)
    return counts


def cluster_peaks(
    ratios: np.ndarray,
    threshold: float,
    series: np.ndarray | None,
    gap: int,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """The largest ratio of each cluster of exceedances of ``threshold``: exceedances of a
    series at most ``gap`` steps apart are one cluster, steps being the rows'
    ``positions`` in their series (None: rows, in time order per series)."""
    keys = pd.Series(np.zeros(len(ratios)) if series is None else np.asarray(series))
    if positions is None:
        positions = keys.groupby(keys).cumcount().to_numpy()
    frame = pd.DataFrame({"key": keys.to_numpy(), "step": positions, "r": ratios})
    over = frame[frame["r"] > threshold].sort_values(["key", "step"], kind="stable")
    if over.empty:
        return np.empty(0)
    key, step = over["key"].to_numpy(), over["step"].to_numpy()
    starts = np.ones(len(over), dtype=bool)
    starts[1:] = (np.diff(step) > gap) | (key[1:] != key[:-1])
    peaks: np.ndarray = np.maximum.reduceat(over["r"].to_numpy(), np.flatnonzero(starts))
    return peaks


def trailing_scale(
    residuals: np.ndarray,
    center: float | np.ndarray,
    scale: float | np.ndarray,
    window: int,
    series: np.ndarray | None = None,
    in_sample: np.ndarray | None = None,
) -> np.ndarray:
    """Each row's robust scale of its series' residuals in the ``window`` steps before it
    (MAD about ``center``, its series', as a standard deviation). Until a quarter of a
    window is known it is ``scale`` (the validation part's, per row: ``per_series``); it
    never falls below half of that, so a quiet stretch does not make every small
    residual an alarm. ``in_sample`` residuals are left out."""
    deviations = pd.Series(np.abs(np.asarray(residuals, dtype=float) - center))
    if in_sample is not None:
        deviations[in_sample] = np.nan
    keys = pd.Series(np.zeros(len(deviations)) if series is None else np.asarray(series))
    trailing = (
        deviations.groupby(keys.to_numpy(), sort=False)
        .transform(lambda part: part.shift(1).rolling(window, min_periods=window // 4).median())
        .to_numpy(dtype=float)
        * MAD_TO_SIGMA
    )
    trailing = np.where(np.isnan(trailing), scale, trailing)
    return np.maximum(trailing, scale / 2)


def _fit_tail(excess: np.ndarray) -> tuple[float, float]:
    """Scale and shape of a generalized Pareto fit to the excesses; when they are too
    few, an exponential's scale from their median (an exponential's median is its scale
    times ln 2), which one outlier among them does not move."""
    if len(excess) == 0:
        return 1.0, 0.0
    mean = float(np.mean(excess)) or 1.0
    if len(excess) < MIN_EXCEEDANCES:
        return float(np.median(excess)) / math.log(2) or mean, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shape, _, fitted_scale = stats.genpareto.fit(excess, floc=0)
    if not (math.isfinite(shape) and math.isfinite(fitted_scale) and fitted_scale > 0):
        return mean, 0.0
    shape = float(np.clip(shape, *SHAPE_BOUNDS))
    return float(fitted_scale), shape


def _survival(excess: np.ndarray, scale: float, shape: float) -> np.ndarray:
    if abs(shape) < 1e-9:
        return np.exp(-excess / scale)
    base = np.maximum(1 + shape * excess / scale, 0.0)
    with np.errstate(divide="ignore"):
        survival: np.ndarray = np.power(base, -1 / shape)
    return survival
